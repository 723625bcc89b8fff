import shutil
from pathlib import Path

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
