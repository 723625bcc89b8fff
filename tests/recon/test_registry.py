import inspect

import numpy as np
import pytest

from chemtomo.core.errors import ChemtomoError
from chemtomo.core.geometry import TiltGeometry
from chemtomo.core.projector import Projector
from chemtomo.recon import registry
from chemtomo.recon.registry import METHODS, auto_method, reconstruct
from chemtomo.testing import ball


def test_table_is_complete_and_consistent():
    assert list(METHODS) == ["fbp", "sirt", "sart", "cgls", "mlem", "tv"]
    for name, info in METHODS.items():
        assert info.function.__name__ == name
        assert info.help and "\n" not in info.help
        params = inspect.signature(info.function).parameters
        if info.iterations is None:
            assert "iterations" not in params
        else:
            assert params["iterations"].default == info.iterations
    assert [n for n, i in METHODS.items() if i.counts] == ["mlem"]


def test_unknown_name_lists_methods():
    with pytest.raises(ChemtomoError) as err:
        reconstruct("art", None, None)
    for name in METHODS:
        assert name in str(err.value)


@pytest.mark.parametrize("name", list(METHODS))
def test_dispatch_runs_every_method(name):
    v = 5 * ball((2, 16, 16), 5)
    A = Projector(TiltGeometry(np.arange(-60, 61, 15.0), v.shape))
    iterations = None if METHODS[name].iterations is None else 3
    out = reconstruct(name, A, A(v), iterations, callback=None)
    assert out.shape == v.shape and np.all(np.isfinite(out))


def test_fbp_rejects_iterations():
    A = Projector(TiltGeometry([0.0, 90.0], (1, 8, 8)))
    with pytest.raises(ChemtomoError, match="direct"):
        reconstruct("fbp", A, np.zeros(A.range_shape, np.float32), 10)


def test_auto_rule():
    assert auto_method(["HAADF"]) == "sirt"
    assert auto_method(["haadf", "BF"]) == "sirt"
    assert auto_method(["Au"]) == "mlem"
    assert auto_method(["Au_La", "Ag_La"]) == "mlem"
    with pytest.raises(ChemtomoError, match="mix"):
        auto_method(["HAADF", "Au"])
    with pytest.raises(ChemtomoError):
        auto_method([])
    with pytest.raises(ChemtomoError):
        auto_method(["Xy"])
    assert "HAADF" in registry.auto_method.__doc__
