import json

import numpy as np
import pytest

from chemtomo.core.errors import ChemtomoError
from chemtomo.simulate.phantoms import (
    COMPOSITIONS,
    parse_spec,
    phantom_from_spec,
    random_particle,
    random_spec,
    render_phantom,
)
from chemtomo.simulate.sdf import FAMILIES, extent, make_body

N = 64
SHAPE = (N, N, N)


def _single(text, seed=0, shape=SHAPE):
    spec = parse_spec(text, ["Au"], shape, seed=seed)
    return render_phantom(spec)["Au"], spec


def _scale(spec):
    b = spec["particles"][0]["body"]
    body = make_body(b["family"], **{k: b[k] for k in ("aspect", "truncation", "rounding", "tip_rounding", "thickness")})
    lo, hi = extent(body, b["rotation"], 1.0)
    return b["size"] / (hi - lo).max()


def test_sphere_volume_matches_analytic():
    occ, spec = _single("sphere,size=0.8")
    r = spec["particles"][0]["body"]["size"] / 2
    assert occ.sum() == pytest.approx(4 / 3 * np.pi * r**3, rel=0.02)
    assert occ.dtype == np.float32 and 0 <= occ.min() and occ.max() <= 1


@pytest.mark.parametrize("rounding", [0.0, 0.15])
def test_rotated_cube_volume_matches_analytic(rounding):
    occ, spec = _single(f"cube,size=0.8,rounding={rounding}", seed=5)
    a = 2 * _scale(spec)  # edge in voxels
    r = rounding * a
    inner = a - 2 * r  # rounded cube = inset cube + ball of radius r
    volume = inner**3 + 6 * inner**2 * r + 3 * np.pi * inner * r**2 + 4 / 3 * np.pi * r**3
    assert occ.sum() == pytest.approx(volume, rel=0.02)


def _moments(occ):
    idx = np.indices(occ.shape).reshape(3, -1).astype(float)
    w = occ.ravel().astype(float)
    mean = idx @ w / w.sum()
    d = idx - mean[:, None]
    return mean, (d * w) @ d.T / w.sum()


def test_rod_aspect_ratio():
    occ, spec = _single("rod,aspect=3,rotation=none,size=0.85,position=centre")
    length = (occ.sum(axis=(0, 2)) > 0.5).sum()  # axis along z
    diameter = (occ.sum(axis=(1, 2)) > 0.5).sum()
    assert length / diameter == pytest.approx(3, rel=0.08)


@pytest.mark.parametrize("family", ["triangle", "truncated-triangle", "hexagon", "square"])
def test_platelets_are_thin_along_their_normal(family):
    occ, spec = _single(f"{family},thickness=0.15,rounding=0,tip=0", seed=2)
    _, cov = _moments(occ)
    thickness = np.sqrt(12 * np.linalg.eigvalsh(cov)[0])  # slab of thickness t: variance t^2/12
    body = spec["particles"][0]["body"]
    verts = make_body(family, truncation=body["truncation"]).vertices
    diameter = max(np.linalg.norm(a - b) for a in verts for b in verts) * _scale(spec)
    assert thickness == pytest.approx(0.15 * diameter, rel=0.08)


def test_sphere_is_rotation_invariant():
    spec = parse_spec("sphere,position=centre", ["Au"], (40, 40, 40))
    a = render_phantom(spec)["Au"]
    spec["particles"][0]["body"]["rotation"] = [0.3, -0.5, 0.7, 0.1]
    b = render_phantom(spec)["Au"]
    np.testing.assert_allclose(a, b, atol=1e-4)


def test_same_seed_same_particle_other_seed_other():
    a, sa = random_particle(3, (32, 32, 32), ["Au", "Ag"])
    b, sb = random_particle(np.random.default_rng(3), (32, 32, 32), ["Au", "Ag"])
    c, _ = random_particle(4, (32, 32, 32), ["Au", "Ag"])
    assert sa["particles"] == sb["particles"]
    assert all(np.array_equal(a[e], b[e]) for e in a)
    assert any(not np.array_equal(a[e], c[e]) for e in a)


def test_spec_json_round_trip_regenerates_identical_volumes():
    for seed in range(6):
        vols, spec = random_particle(seed, (32, 32, 32), ["Pt", "Ni", "Co"], max_particles=3)
        again = render_phantom(json.loads(json.dumps(spec)))
        assert all(np.array_equal(vols[e], again[e]) for e in vols)


def test_size_fills_75_to_90_percent_and_stays_inside():
    for seed in range(12):
        spec = random_spec(seed, SHAPE, ["Au", "Ag"])
        occ = sum(render_phantom(spec).values())
        ext = max((occ.max(axis=tuple(a for a in range(3) if a != k)) >= 0.5).sum() for k in range(3))
        assert 0.75 * N - 1.5 <= ext <= 0.9 * N + 1.5
        assert spec["particles"][0]["body"]["size"] == pytest.approx(ext, abs=1.5)
        for k in range(3):  # nothing touches the box faces
            assert np.take(occ, [0, -1], axis=k).max() == 0
        assert occ.max() <= 1 + 1e-6


def test_core_shell_sphere_fractions_and_nesting():
    v = phantom_from_spec("core-shell:sphere,core=sphere,ratio=0.6,interface=0,position=centre", ["Au", "Ag"], SHAPE)
    total = v["Au"] + v["Ag"]
    assert total.max() <= 1 + 1e-6 and min(v["Au"].min(), v["Ag"].min()) >= 0
    assert v["Au"].sum() / total.sum() == pytest.approx(0.6**3, rel=0.03)  # core volume fraction
    assert v["Ag"].sum() / total.sum() == pytest.approx(1 - 0.6**3, rel=0.01)
    c = N // 2
    assert v["Au"][c, c, c] == pytest.approx(1) and v["Ag"][c, c, c] == 0
    # core inside the shell region: no core where the particle is not full (outer surface)
    assert v["Au"][total < 0.999].max() == 0


@pytest.mark.parametrize("family", ["sphere", "cube", "rod"])
@pytest.mark.parametrize("seed", [4, 101])  # seeds whose random core was a needle-like bipyramid (1 % of the particle)
def test_core_follows_the_particle_unless_given(family, seed):
    text = f"core-shell:{family},ratio=0.6"
    spec = parse_spec(text, ["Au", "Ag"], SHAPE, seed=seed)
    body, core = spec["particles"][0]["body"], spec["particles"][0]["cores"][0]
    assert core["family"] == family and core["offset"] == [0.0, 0.0, 0.0]
    assert all(core[k] == body[k] for k in ("aspect", "truncation", "rounding"))  # a scaled copy
    v = render_phantom(spec)
    assert v["Au"].sum() / (v["Au"] + v["Ag"]).sum() == pytest.approx(0.6**3, rel=0.06)
    named = parse_spec(text + ",core=octahedron", ["Au", "Ag"], SHAPE, seed=seed)["particles"][0]["cores"][0]
    assert named["family"] == "octahedron"  # an explicit core is honoured
    drawn = {parse_spec(text + ",core=random", ["Au", "Ag"], (16,) * 3, seed=s)["particles"][0]["cores"][0]["family"]
             for s in range(8)}
    assert len(drawn) > 2  # core=random still draws the family


def test_random_specs_keep_random_cores():
    fams = {p["body"]["family"] == p["cores"][0]["family"]
            for s in range(30) for p in random_spec(s, (16,) * 3, ["Au", "Ag"], compositions=["core-shell"])["particles"]}
    assert fams == {True, False}  # training sets still see cores of another shape than their shell


def test_off_centre_core_stays_inside():
    v = phantom_from_spec("core-shell:cube,core=sphere,ratio=0.5,offset=0.3,interface=0,rounding=0",
                          ["Au", "Ag"], SHAPE, seed=1)
    total = v["Au"] + v["Ag"]
    assert np.all(v["Au"] <= total + 1e-6) and total.max() <= 1 + 1e-6
    shift = np.linalg.norm(_moments(v["Au"])[0] - _moments(total)[0])
    assert shift > 3  # visibly off centre (0.3 outer radii is about 9 voxels here)


def _max_interior_gradient(v):
    from scipy import ndimage

    interior = ndimage.binary_erosion(v["Au"] + v["Ag"] > 0.999, iterations=2)
    return max(np.abs(g)[interior].max() for g in np.gradient(v["Au"]))


@pytest.mark.parametrize("mode", ["graded", "blur"])
def test_diffuse_interface_is_smoother_than_sharp(mode):
    text = "core-shell:octahedron,core=cube,ratio=0.6,position=centre,interface={}," + f"mode={mode}"
    sharp = phantom_from_spec(text.format(0), ["Au", "Ag"], SHAPE, seed=4)
    soft = phantom_from_spec(text.format(5), ["Au", "Ag"], SHAPE, seed=4)
    assert _max_interior_gradient(soft) < 0.6 * _max_interior_gradient(sharp)
    assert soft["Au"].sum() == pytest.approx(sharp["Au"].sum(), rel=0.1)  # same core, only smeared
    np.testing.assert_allclose(soft["Au"] + soft["Ag"], sharp["Au"] + sharp["Ag"], atol=1e-5)  # same particle


def test_multi_shell_alloy_and_gradient():
    c = N // 2
    v = phantom_from_spec("multi-shell:sphere,core=sphere/sphere,ratio=0.4/0.7,interface=0,position=centre",
                          ["Au", "Ag", "Au"], SHAPE)
    assert sorted(v) == ["Ag", "Au"] and v["Au"][c, c, c] == 1 and v["Ag"][c, c, c] == 0
    radial = v["Ag"][c, c, c:]
    assert radial[int(0.55 * 0.4 * N)] == 1 and radial[int(0.95 * 0.4 * N)] == 0  # Ag only in the middle shell
    v = phantom_from_spec("alloy:icosahedron,fractions=0.7/0.3", ["Au", "Ag"], SHAPE)
    assert v["Au"].sum() / (v["Au"].sum() + v["Ag"].sum()) == pytest.approx(0.7)
    v = phantom_from_spec("gradient:sphere,gradient=1/0,position=centre", ["Au", "Ag"], SHAPE)
    assert v["Au"][c, c, c] > 0.9 and v["Au"][c, c, c + int(0.35 * N)] < 0.3


@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_renders(family):
    occ, spec = _single(family, seed=11, shape=(24, 24, 24))
    assert occ.dtype == np.float32 and occ.max() == pytest.approx(1) and occ.min() == 0
    assert spec["particles"][0]["body"]["family"] == family


def test_random_draws_cover_compositions_and_fields():
    specs = [random_spec(s, (16, 16, 16), ["Au", "Ag"], max_particles=3) for s in range(40)]
    kinds = {p["composition"] for s in specs for p in s["particles"]}
    assert kinds == set(COMPOSITIONS)
    assert max(len(s["particles"]) for s in specs) > 1
    assert {p["composition"] for p in random_spec(0, (16,) * 3, ["Au"])["particles"]} == {"single"}


@pytest.mark.parametrize("text, match", [
    ("blob", "cube"),  # unknown family lists the valid ones
    ("shell:cube", "core-shell"),
    ("cube,colour=red", "keys"),
    ("cube,aspect", "key=value"),
    ("cube,fractions=0.5/0.5", "applies to alloy"),
    ("alloy:cube,fractions=a/b", "cannot read"),
    ("core-shell:cube,ratio=0.9/0.5", "core and ratio"),
    ("core-shell:cube,core=blob", "unknown core family"),
    ("cube,rounding=0.9", "rounding"),
    ("cube,size=1.5", "size"),
    ("cube,rotation=1/0/0", "quaternion"),
    ("bipyramid,truncation=1", "flatten"),
    ("gradient:cube,gradient=2/0", "two fractions"),
    ("alloy:cube,fractions=0/0", "non-negative"),
])
def test_grammar_errors(text, match):
    with pytest.raises(ChemtomoError, match=match):
        phantom_from_spec(text, ["Au", "Ag"], (16, 16, 16))


def test_grammar_needs_enough_elements():
    with pytest.raises(ChemtomoError, match="at least 2 elements"):
        phantom_from_spec("core-shell:cube", ["Au"], (16, 16, 16))
    with pytest.raises(ChemtomoError, match="elements"):
        random_spec(0, (16, 16, 16), [])
