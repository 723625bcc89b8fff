"""chemtomo.io.matlab.read_mat_stack: MATLAB (H, W, views) -> p[a, y, u]."""

import numpy as np
import pytest
import scipy.io

from chemtomo.core.errors import ChemtomoError
from chemtomo.io.matlab import mat_keys, read_mat_stack, read_mat_views


def test_channels_last_moves_views_first(tmp_path):
    stack = np.random.default_rng(0).random((6, 5, 3)).astype(np.float32)  # (H, W, views)
    f = tmp_path / "s.mat"
    scipy.io.savemat(f, {"input": stack})
    out = read_mat_stack(f)
    assert out.shape == (3, 6, 5) and out.dtype == np.float32 and out.flags.c_contiguous
    for a in range(3):  # rows stay rows: view a is the MATLAB page stack[:, :, a]
        np.testing.assert_array_equal(out[a], stack[:, :, a])


def test_as_stored_and_dtypes(tmp_path):
    vol = np.arange(24, dtype=np.float64).reshape(2, 3, 4)
    f = tmp_path / "v.mat"
    scipy.io.savemat(f, {"label": vol, "counts": np.ones((2, 2), np.uint8)})
    out = read_mat_stack(f, "label", channels_last=False)
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, vol)
    img = read_mat_stack(f, "counts")
    assert img.shape == (1, 2, 2) and img.dtype == np.float32
    assert sorted(mat_keys(f)) == ["counts", "label"]


def test_key_errors(tmp_path):
    f = tmp_path / "two.mat"
    scipy.io.savemat(f, {"a": np.zeros((2, 2, 2)), "b": np.zeros((2, 2, 2))})
    with pytest.raises(ChemtomoError, match="pass key="):
        read_mat_stack(f)
    with pytest.raises(ChemtomoError, match="no variable 'c'"):
        read_mat_stack(f, "c")
    with pytest.raises(ChemtomoError, match="does not exist"):
        read_mat_stack(tmp_path / "missing.mat")
    g = tmp_path / "text.mat"
    scipy.io.savemat(g, {"s": "hello"})
    with pytest.raises(ChemtomoError, match="not a real numeric array"):
        read_mat_stack(g)


def test_read_mat_views_stacks_files(tmp_path):
    files = []
    for i in range(4):
        f = tmp_path / f"input_{i:04d}.mat"
        scipy.io.savemat(f, {"input": np.full((5, 6, 3), i, np.float32)})
        files.append(f)
    out = read_mat_views(files)
    assert out.shape == (4, 3, 5, 6)
    assert out[2, 1, 0, 0] == 2
    with pytest.raises(ChemtomoError):
        read_mat_views([])


def test_read_stack_dispatches_mat(tmp_path):
    from chemtomo.io import read_stack

    stack = np.random.default_rng(1).random((4, 6, 5)).astype(np.float32)  # (H, W, views)
    f = tmp_path / "maps.mat"
    scipy.io.savemat(f, {"input": stack})
    out, meta = read_stack(f)
    assert out.shape == (5, 4, 6) and meta["format"] == "mat"
    np.testing.assert_array_equal(out[2], stack[:, :, 2])
