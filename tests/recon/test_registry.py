import inspect

import numpy as np

import pytest

from chemtomo.core.errors import ChemtomoError
from chemtomo.recon import registry
from chemtomo.recon.registry import METHODS, check_method, method_options


def test_table_is_complete_and_consistent():
    assert list(METHODS) == ["fbp", "sirt", "sart", "cgls", "mlem", "tv", "bimodal", "tnv", "tgv", "tv_joint", "dtv",
                             "fused"]
    for name, m in METHODS.items():
        assert m.function.__name__ == name
        assert m.help and "\n" not in m.help
        params = inspect.signature(m.function).parameters
        if m.iterations is None:
            assert "iterations" not in params and not m.stoppable
        else:
            assert params["iterations"].default == m.iterations
        assert "callback" in params or m.iterations is None
        assert list(params)[:3] == ["ops", "data", "elements"] if m.joint else list(params)[0] == "op"
    assert [n for n, m in METHODS.items() if not m.joint and m.counts] == ["mlem"]
    assert [n for n, m in METHODS.items() if m.stoppable] == ["sirt", "sart", "cgls", "mlem", "bimodal"]
    assert all(m.counts for m in METHODS.values() if m.joint)


def test_unknown_name_lists_methods():
    with pytest.raises(ChemtomoError) as err:
        check_method("art", {})
    assert "\n" not in str(err.value) and "auto" in str(err.value)
    for name in METHODS:
        assert name in str(err.value)
    with pytest.raises(ChemtomoError, match="unknown method 'art'"):
        method_options("art")


def test_options_are_keyword_only_and_exclude_callbacks():
    assert method_options("tv") == ["weight", "data_term", "background", "x0", "bounds", "mask"]
    assert "stop" not in method_options("bimodal") and "callback" not in method_options("sirt")
    assert "edge_fraction" in method_options("dtv") and "z_exponent" in method_options("fused")


@pytest.mark.parametrize("name, options, words", [
    ("tv", {"weight": "large"}, ["weight", "number"]),
    ("tv", {"weight": -1.0}, ["weight", ">= 0"]),
    ("tnv", {"weight": float("nan")}, ["weight"]),
    ("fused", {"weight": {"Au": float("inf")}}, ["weight"]),
    ("sart", {"subsets": 2.5}, ["subsets", "whole"]),
    ("tgv", {"coupling": 3}, ["coupling", "name"]),
    ("dtv", {"edge_fraction": "high"}, ["edge_fraction"]),
])
def test_option_values_of_the_wrong_kind(name, options, words):
    with pytest.raises(ChemtomoError) as err:
        check_method(name, options)
    assert "\n" not in str(err.value)
    for w in words:
        assert w in str(err.value)


def test_good_options_pass():
    check_method("tv", {"weight": None, "data_term": "kl"}, iterations=10)
    check_method("fused", {"weight": {"Au": 1.0, "Ag": 2}, "alpha": None, "rng": 3})
    check_method("bimodal", {"alpha": 0}, stop="discrepancy")
    check_method("auto", {"anything": 1}, stop="none")  # checked once auto has picked the method


def test_stop_and_iterations():
    with pytest.raises(ChemtomoError, match="fbp is a direct method without iterations; leave --iterations unset"):
        check_method("fbp", {}, iterations=10)
    with pytest.raises(ChemtomoError, match=r"tv does not semi-converge.*sirt, sart, cgls, mlem, bimodal"):
        check_method("tv", {}, stop="discrepancy")
    with pytest.raises(ChemtomoError, match="unknown stopping rule"):
        check_method("sirt", {}, stop="early")
    with pytest.raises(ChemtomoError, match="iterations"):
        check_method("sirt", {}, iterations=-1)


def test_auto_is_the_pipelines_choice_not_a_method():
    from chemtomo.core.data import TiltSeries
    from chemtomo.recon.series import reconstruct_series

    series = TiltSeries.from_arrays({"Au": np.zeros((3, 4, 8))}, [-10, 0, 10])
    with pytest.raises(ChemtomoError, match="pipeline.auto"):
        reconstruct_series(series, "auto")
