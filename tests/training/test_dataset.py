import numpy as np
import pytest

from chemtomo.core.errors import ChemtomoError
from chemtomo.simulate.phantoms import random_spec, render_phantom
from chemtomo.training import dataset
from chemtomo.training.dataset import read_dataset, write_dataset

SHAPE = (20, 20, 20)


def test_writes_n_particles_that_match_their_specs(tmp_path):
    ds = write_dataset(tmp_path / "set.zarr", 4, SHAPE, elements=("Au", "Ag"), seed=7, workers=1)
    assert len(ds) == 4 and ds.completed == [0, 1, 2, 3]
    assert ds.arrays["Au"].shape == (4, *SHAPE) and ds.arrays["Au"].chunks == (1, *SHAPE)
    for i in range(4):
        vols, spec = ds[i], ds.spec(i)
        again = render_phantom(spec)
        for e in ("Au", "Ag"):
            assert vols[e].dtype == np.float32
            np.testing.assert_array_equal(vols[e], again[e].astype(np.float16).astype(np.float32))
        # the spec is the seed's draw: particle i regenerates from (seed, i) alone
        fresh = random_spec(np.random.default_rng([7, i]), SHAPE, ("Au", "Ag"))
        assert fresh["particles"] == spec["particles"]
    assert any(ds[i]["Au"].max() > 0 for i in range(4))


def test_resume_skips_written_particles(tmp_path, monkeypatch):
    path = tmp_path / "set.zarr"
    first = write_dataset(path, 3, SHAPE, seed=1, workers=1)
    before = {i: first[i] for i in range(3)}
    import zarr

    root = zarr.open_group(str(path), mode="r+")
    specs = dict(root.attrs["specs"])
    del specs["1"]  # as if interrupted before particle 1 was recorded
    root.attrs["specs"] = specs
    root["Au"][1] = 0
    root["Ag"][1] = 0
    assert read_dataset(path).completed == [0, 2]

    made = []
    original = dataset._make_one
    monkeypatch.setattr(dataset, "_make_one", lambda p, i, c: made.append(i) or original(p, i, c))
    ds = write_dataset(path, 3, SHAPE, seed=1, workers=1)
    assert made == [1] and ds.completed == [0, 1, 2]
    for i in range(3):
        for e in before[i]:
            np.testing.assert_array_equal(ds[i][e], before[i][e])
    write_dataset(path, 3, SHAPE, seed=1, workers=1)  # nothing left to do
    assert made == [1]


def test_two_workers_give_the_same_data(tmp_path):
    a = write_dataset(tmp_path / "a.zarr", 3, (12, 12, 12), seed=2, workers=2, dtype="float32")
    b = write_dataset(tmp_path / "b.zarr", 3, (12, 12, 12), seed=2, workers=1, dtype="float32")
    for i in range(3):
        for e in ("Au", "Ag"):
            np.testing.assert_array_equal(a[i][e], b[i][e])


def test_errors(tmp_path):
    path = tmp_path / "set.zarr"
    write_dataset(path, 2, (8, 8, 8), seed=0, workers=1)
    with pytest.raises(ChemtomoError, match="other arguments"):
        write_dataset(path, 2, (8, 8, 8), seed=1, workers=1)
    with pytest.raises(ChemtomoError, match="does not exist"):
        read_dataset(tmp_path / "missing.zarr")
    with pytest.raises(ChemtomoError, match="float16 or float32"):
        write_dataset(tmp_path / "x.zarr", 2, (8, 8, 8), dtype="int8")
    ds = read_dataset(path)
    with pytest.raises(ChemtomoError, match="not in this data set"):
        ds[5]
