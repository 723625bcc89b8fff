import json

import numpy as np
import pytest

from chemtomo.cli import main
from chemtomo.core.errors import ChemtomoError
from chemtomo.plan import plan, scaled_nrmse

SPEC = "core-shell:sphere,ratio=0.6,rotation=none,position=centre,size=0.7"


def test_scaled_nrmse():
    t = np.array([1.0, 2.0, 0.0])
    assert scaled_nrmse(3 * t, t) == pytest.approx(0.0)
    assert scaled_nrmse(-t, t) == pytest.approx(1.0)  # a negative scale is not allowed
    with pytest.raises(ChemtomoError):
        scaled_nrmse(t, np.zeros(3))


@pytest.mark.slow
def test_plan_recommends_the_lowest_dose_that_meets_the_target():
    res = plan(SPEC, ["Au", "Ag"], shape=(24, 24, 24), doses=(3e5, 1e8), tilts=(15,), methods=("mlem", "tv"),
               target=0.35)
    assert len(res.rows) == 4
    by = {(r["dose"], r["method"]): r["worst"] for r in res.rows}
    assert all(by[(1e8, m)] < by[(3e5, m)] for m in ("mlem", "tv"))  # more dose, less error
    ok = [r for r in res.rows if r["worst"] <= 0.35]
    assert res.recommendation == min(ok, key=lambda r: (r["dose"], r["tilts"], r["worst"]))
    assert "recommended" in res.summary()
    strict = plan(SPEC, ["Au", "Ag"], shape=(24, 24, 24), doses=(3e5,), tilts=(15,), methods=("mlem",), target=1e-3)
    assert strict.recommendation is None and "no acquisition" in strict.summary()


@pytest.mark.slow
def test_plan_cli(tmp_path, capsys):
    code = main(["plan", "--phantom", SPEC, "--elements", "Au,Ag", "--size", "24", "--doses", "1e6,1e8",
                 "--tilts", "15", "--methods", "mlem,dtv", "--target", "0.5", "--out", str(tmp_path)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "recommended" in printed
    meta = json.loads((tmp_path / "plan.json").read_text())
    assert len(meta["rows"]) == 4 and meta["settings"]["target"] == 0.5
    assert (tmp_path / "plan.png").stat().st_size > 5_000 and (tmp_path / "plan.parquet").exists()
    assert main(["plan", "--phantom", SPEC, "--elements", "Au,Ag", "--methods", "magic", "--out", str(tmp_path)]) == 2
    assert "magic" in capsys.readouterr().err


def test_shell_resolution_follows_the_blur():
    from scipy.ndimage import gaussian_filter

    from chemtomo.plan import shell_resolution
    from chemtomo.simulate import phantom_from_spec

    t = phantom_from_spec(SPEC, ["Au", "Ag"], (32, 32, 32))["Ag"]
    assert shell_resolution(3 * t, t, voxel_size=0.5) == 1.0  # any scale; Nyquist: two voxels
    res = [shell_resolution(gaussian_filter(t, s), t, voxel_size=0.5) for s in (1.0, 2.0, 3.0)]
    assert res[0] < res[1] < res[2]
    # transfer exp(-2 pi^2 s^2 f^2) falls to 1 - sqrt(0.5) at f = 0.249 / s cycles per voxel: about 4 s voxels
    assert res[1] == pytest.approx(0.5 * 4.0 * 2.0, rel=0.2)


@pytest.mark.slow
def test_plan_with_a_resolution_target():
    res = plan(SPEC, ["Au", "Ag"], shape=(24, 24, 24), doses=(3e5, 1e8), tilts=(15,), methods=("tv",), target=None,
               resolution=3.0)
    assert all("resolution_nm" in r for r in res.rows)
    ok = [r for r in res.rows if r["resolution_nm"] <= 3.0]
    assert res.recommendation == (min(ok, key=lambda r: r["dose"]) if ok else None)
    with pytest.raises(ChemtomoError, match="target error, a resolution"):
        plan(SPEC, ["Au", "Ag"], target=None)
