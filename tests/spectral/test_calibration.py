"""The energy axis checked against the known X-ray lines: an axis 30 eV off is found and corrected."""

import json

import numpy as np
import pytest

from chemtomo.physics.xray import energy_axis
from chemtomo.simulate.spectrum import expected_spectra, to_exspy
from chemtomo.spectral.calibration import energy_offset

E = energy_axis(1024, 0.01)


@pytest.fixture(scope="module")
def counts():
    yy, xx = np.mgrid[:12, :12]
    areal = {"Fe": 2.0 * ((yy - 6) ** 2 + (xx - 6) ** 2 < 16) + 0.05, "Pt": 1.0 * ((yy - 6) ** 2 + (xx - 6) ** 2 < 4)}
    return np.random.default_rng(0).poisson(expected_spectra(areal, E, dose=5e4, pixel_size=5.0))


@pytest.mark.parametrize("shift", [0.0, 0.03, -0.05])
def test_the_offset_of_a_shifted_axis_is_measured(counts, shift):
    # the file labels each channel `shift` keV too low: the lines sit `-shift` from their energies on its axis
    check = energy_offset(counts, E - shift, ["Fe_Ka", "Pt_La"])
    assert check["reliable"] and check["offset"] == pytest.approx(-shift, abs=0.004)
    assert check["off"] == (shift != 0.0)


def test_no_lines_is_not_reliable():
    flat = np.random.default_rng(1).poisson(3.0, (8, 8, E.size))
    assert not energy_offset(flat, E, ["Fe_Ka"])["reliable"]


def test_cli_maps_says_the_axis_is_off_and_the_correction_restores_the_counts(counts, tmp_path, capsys):
    from chemtomo.cli import main

    for i, a in enumerate((-10, 10)):
        s = to_exspy(counts, E + 0.03, lines=["Fe_Ka"], pixel_size=5.0)  # axis 30 eV too high: lines sit +30 eV
        s.save(str(tmp_path / f"tilt_{a}.hspy"), overwrite=True)
    files = sorted(str(p) for p in tmp_path.glob("*.hspy"))
    assert main(["maps", *files, "--elements", "Fe", "--angles-from-names", "--out", str(tmp_path / "off")]) == 0
    text = capsys.readouterr().out.replace("\n", " ")
    assert "sit +3" in text and "eV from their energies" in text and "--energy-correction -0.03" in text
    assert main(["maps", *files, "--elements", "Fe", "--angles-from-names", "--energy-correction", "-0.03",
                 "--out", str(tmp_path / "fixed")]) == 0
    assert "looks off" not in capsys.readouterr().out
    off = json.loads((tmp_path / "off" / "maps.json").read_text())
    fixed = json.loads((tmp_path / "fixed" / "maps.json").read_text())
    assert off["energy_check"]["off"] and not fixed["energy_check"]["off"]
    assert abs(fixed["energy_check"]["offset"]) < 0.005 and fixed["energy_correction_keV"] == -0.03
