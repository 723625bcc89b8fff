import numpy as np
import pytest

from chemtomo.core.errors import ChemtomoError
from chemtomo.physics.xray import energy_axis
from chemtomo.spectral.lines import auto_lines, check_line, line_components, resolve_lines

E20 = energy_axis(2048, 0.01)          # 0 - 20.47 keV
E8 = energy_axis(820, 0.01)            # 0 - 8.19 keV


def test_auto_lines_choose_k_else_l_and_m():
    assert auto_lines("Fe", E20) == ["Fe_Ka"]
    assert auto_lines("Pt", E20) == ["Pt_La", "Pt_Ma"]
    assert auto_lines("Pt", E8) == ["Pt_Ma"]
    assert resolve_lines("Fe,Pt_Ma, O", E20) == ["Fe_Ka", "Pt_Ma", "O_Ka"]


def test_unknown_element_and_out_of_range_line():
    with pytest.raises(ChemtomoError, match="unknown element"):
        auto_lines("Xx", E20)
    with pytest.raises(ChemtomoError, match=r"Pt_La at 9.44 keV is outside the spectrum's 0-8.19 keV"):
        check_line("Pt_La", E8)
    with pytest.raises(ChemtomoError, match="unknown X-ray line"):
        resolve_lines(["Fe_Kz"], E20)
    with pytest.raises(ChemtomoError, match="no usable energy axis"):
        auto_lines("Fe", None)


def test_line_components_normalised_to_named_family():
    e, w = line_components("Fe_Ka")
    ka = (e > 6.3) & (e < 6.45)
    assert np.isclose(w[ka].sum(), 1.0) and (w[~ka] > 0).all() and (w[~ka].sum() < 0.3)
    e, w = line_components("Pt_Ma")
    assert e.min() > 0.4 and e.max() < 3.5 and np.isclose(w[(e > 2.04) & (e < 2.06)].sum(), 1.0)
