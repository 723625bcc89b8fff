import shutil

import numpy as np
import pytest

from chemtomo.cli import main
from chemtomo.core.data import VolumeSet
from chemtomo.io.write import write_volume_set


def _sphere(shape, centre, radius):
    g = np.meshgrid(*[np.arange(n, dtype=float) for n in shape], indexing="ij")
    return sum((gi - c) ** 2 for gi, c in zip(g, centre)) <= radius**2


@pytest.fixture()
def run_dir(tmp_path):
    shape = (32, 32, 32)
    core, whole = _sphere(shape, (16, 16, 16), 6), _sphere(shape, (16, 16, 16), 11)
    vols = {"Au": core.astype(np.float32), "Ag": (whole & ~core).astype(np.float32),
            "HAADF": (3 * core + (whole & ~core)).astype(np.float32)}
    prov = {"method": "dtv", "iterations": 300, "seconds": 1.0,
            "angles_deg": {"HAADF": list(range(-70, 71, 2)), "Au": list(range(-70, 71, 10))},
            "convergence": {"iteration": [10, 20, 30], "relative_change": [0.1, 0.01, 0.001]},
            "info": {"weight": 0.2, "weight_rule": "count-splitting",
                     "weight_search": [[0.02, 10.0], [0.06, 8.0], [0.2, 7.5], [0.6, 7.9]]}}
    run = tmp_path / "run"
    write_volume_set(VolumeSet(vols, voxel_size=0.5, provenance=prov), run)
    assert main(["quantify", str(run), "--core", "Au"]) == 0
    return run


@pytest.mark.slow
def test_report_is_self_contained(run_dir, capsys):
    assert main(["report", str(run_dir)]) == 0
    page = (run_dir / "report.html").read_text()
    for section in ("Acquisition and reconstruction", "Orthogonal slices", "Overlay", "Profiles", "Convergence",
                    "Parameter choice", "Particles", "3D view"):
        assert f"<h2>{section}</h2>" in page
    assert "<script src=\"http" not in page and "cdn.plot.ly" not in page.split("<h2>3D view</h2>")[0]
    assert page.count("data:image/png;base64,") >= 5 and "Mesh3d".lower() in page.lower()
    assert main(["report", str(run_dir / "nothing")]) == 2
    assert "<p>Weight 0.2, chosen by count-splitting.</p>" in page


def test_weight_caption_says_which_rule_chose_the_weight():
    from chemtomo.report.html import _weight_caption

    search = [[0.01, 5.0], [0.03, 5.5], [0.1, 9.0]]
    text = _weight_caption({"weight": 0.03, "weight_rule": "held-out views, one standard error",
                            "weight_search": search})
    assert "Weight 0.03, chosen by held-out views, one standard error" in text
    assert "lowest held-out score is at 0.01" in text and "within one standard error" in text
    assert _weight_caption({"weight": 0.01, "weight_rule": "count-splitting", "weight_search": search}) == (
        "<p>Weight 0.01, chosen by count-splitting.</p>")
    assert _weight_caption({"weight": 0.01}) == ""


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="needs headless Chromium (Debian package chromium)")
def test_report_in_headless_chromium(run_dir, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    assert main(["report", str(run_dir)]) == 0
    errors = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--no-sandbox"])
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto((run_dir / "report.html").resolve().as_uri())
        page.wait_for_selector("#view3d .main-svg", timeout=20_000)
        page.wait_for_timeout(1000)
        gl = page.evaluate("document.querySelectorAll('#view3d canvas').length")
        text = page.inner_text("body")
        page.locator("#view3d").scroll_into_view_if_needed()
        shot = tmp_path / "report.png"
        page.screenshot(path=str(shot), full_page=True)
        browser.close()
    assert errors == []
    assert gl >= 1 and "WebGL is not supported" not in text  # the WebGL scene of the 3D view rendered
    assert shot.stat().st_size > 50_000


#: provenance of ``chemtomo reconstruct --method auto`` (Au@Ag, 24^3, HAADF + EDX; trimmed): each element is the
#: mean of several pipelines, two of them from joint runs, and ``joint`` holds the joint run's record
AUTO = {
    "method": "auto", "thickness": 24,
    "auto": {"counts": {"signals": ["Au", "Ag"], "rule": "count splitting: squared error per held-out count",
                        "ranking": [{"candidate": "best per element", "score": 0.82}, {"candidate": "dtv", "score": 0.9}],
                        "chosen": {"candidate": "best per element", "score": 0.82}},
             "views": {"HAADF": {"rule": "held-out views", "ranking": [{"candidate": "sirt", "score": 2.7e-05}],
                                 "chosen": {"candidate": "sirt", "score": 2.7e-05}}},
             "seconds": 8.34, "final_seconds": 1.1},
    "signals": {
        "Au": {"method": "tnv & dtv & mlem", "candidate": "tnv & dtv & gaussian+mlem", "combine": "mean",
               "members": [{"method": "tnv", "candidate": "tnv", "joint": True},
                           {"method": "dtv", "candidate": "dtv", "joint": True},
                           {"method": "mlem", "candidate": "gaussian+mlem", "iterations": 320, "seconds": 0.2}]},
        "Ag": {"method": "dtv & tnv", "candidate": "dtv & tnv", "combine": "mean",
               "members": [{"method": "dtv", "candidate": "dtv", "joint": True},
                           {"method": "tnv", "candidate": "tnv", "joint": True}]},
        "HAADF": {"method": "sirt", "iterations": 450, "seconds": 0.115, "angles_deg": [-70.0, 0.0, 70.0],
                  "candidate": "sirt"}},
    "joint": {"method": "dtv", "iterations": 300, "seconds": 0.456, "info": {"weight": 97.19999999999993},
              "angles_deg": {"HAADF": [-70.0, 70.0], "Au": [-70.0, 70.0], "Ag": [-70.0, 70.0]}},
}


def test_summary_says_only_what_the_provenance_records(tmp_path, capsys):
    from chemtomo.report.html import _summary

    text = _summary(AUTO)
    assert "None" not in text and "0.00 s" not in text and "- iterations" not in text
    assert "best per element, best of 2 candidates" in text and "sirt, best of 1 candidate " in text
    assert "dtv (joint: HAADF, Au, Ag), 300 iterations, 0.46 s" in text and "97.2" in text
    assert "mean of 3 pipelines: tnv (joint); dtv (joint); gaussian+mlem (320 iterations, 0.20 s)" in text
    assert "selection 8.3 s, final run 1.1 s" in text
    # a joint record without iterations or time, and a method without iterations (fbp)
    text = _summary({"method": "dtv", "info": {"weight": 0.2}, "angles_deg": {"HAADF": [0.0, 10.0]}})
    assert "None" not in text and "dtv (joint: HAADF)</td>" in text and " s<" not in text
    text = _summary({"method": "fbp", "signals": {"Au": {"method": "fbp", "iterations": None, "seconds": 0.01}}})
    assert "None" not in text and "fbp (0.01 s)" in text
    # the record a real joint run writes
    from chemtomo.io import write_stack
    from chemtomo.testing import core_shell
    from chemtomo.core.geometry import TiltGeometry
    from chemtomo.core.projector import Projector

    parts = core_shell((4, 16, 16), 3, 6)
    angles = np.linspace(-60, 60, 7)
    op = Projector(TiltGeometry(angles, (4, 16, 16)))
    sig = []
    for name, vol in (("HAADF", 3 * parts["core"] + parts["shell"]), ("Au", parts["core"]), ("Ag", parts["shell"])):
        write_stack(tmp_path / f"{name}.mrc", np.random.default_rng(0).poisson(20 * op(vol)).astype(np.float32),
                    angles)
        sig += ["--signal", f"{name}={tmp_path / (name + '.mrc')}"]
    assert main(["reconstruct", *sig, "--method", "dtv", "--iterations", "10", "--out", str(tmp_path / "r")]) == 0
    import json

    text = _summary(json.loads((tmp_path / "r" / "chemtomo.json").read_text())["provenance"])
    assert "dtv (joint: HAADF, Au, Ag), 10 iterations, " in text and "None" not in text


def test_particle_table_shows_the_largest_and_says_how_many_more():
    from chemtomo.report.html import MAX_TABLE_ROWS, _particle_table

    rows = [{"particle": k, "voxels": 1000 - k, "diameter_nm": 1.0} for k in range(1, 31)]
    rows.reverse()  # any order: the largest are shown
    note, table = _particle_table(rows)
    assert MAX_TABLE_ROWS == 20 and table.count("<tr>") == 21  # header + 20 particles
    assert "<td>1</td>" in table and "<td>20</td>" in table and "<td>21</td>" not in table
    assert "30 particles" in note and "10 more" in note and "particles.csv" in note
    assert len(_particle_table(rows[:5])) == 1  # no note when all are shown
