import numpy as np
import pytest
import torch

from chemtomo.core.diff import SymGradient, sym_gradient, sym_gradient_adjoint
from chemtomo.core.errors import ChemtomoError
from chemtomo.recon.channels import Identity
from chemtomo.recon.pdhg import L2, TV as TVFromPdhg, pdhg
from chemtomo.recon.regularisers import TGV, TNV, TV, project_spectral
from chemtomo.testing import check_operator


def test_sym_gradient_adjoint_and_norm():
    op = SymGradient((2, 3, 5, 6, 7))
    assert check_operator(op) < 1e-6
    w = np.random.default_rng(0).random((3, 4, 5, 6), dtype=np.float32)
    e = sym_gradient(w)
    assert e.shape == (6, 4, 5, 6)
    assert np.allclose(sym_gradient_adjoint(e), SymGradient(w.shape).T(e), atol=1e-6)
    # symmetrising cannot increase the norm: ||E|| <= ||grad|| = 2 sqrt(3)
    assert op.T.norm(iterations=60) <= op.norm() + 1e-4


def test_sym_gradient_of_rotation_is_zero_inside():
    y, z, x = np.meshgrid(*[np.arange(6.0)] * 3, indexing="ij")
    w = np.stack([z, -y, np.zeros_like(x)]).astype(np.float32)  # infinitesimal rotation: E w = 0
    e = sym_gradient(w)
    assert np.abs(e[:, :-1, :-1, :-1]).max() < 1e-6


def _matrices(q):
    c, d = q.shape[:2]
    return q.reshape(c, d, -1).permute(2, 0, 1).double()


@pytest.mark.parametrize("channels", [2, 3, 4])
def test_tnv_projection_onto_spectral_ball(channels):
    gen = torch.Generator().manual_seed(channels)
    q = 2.0 * torch.randn((channels, 3, 4, 5, 6), generator=gen)
    z = TNV(0.7).prox_conj(q.clone(), 0.3)
    s_in, s_out = torch.linalg.svdvals(_matrices(q)), torch.linalg.svdvals(_matrices(z))
    assert float(s_out.max()) <= 0.7 * (1 + 1e-4)  # float32 closed form: within 1e-4 of the ball
    assert torch.allclose(s_out, s_in.clamp(max=0.7), atol=1e-4)  # same singular vectors, clipped values
    u, _, vh = torch.linalg.svd(_matrices(q), full_matrices=False)
    expect = (u * s_in.clamp(max=0.7).unsqueeze(-2)) @ vh
    assert torch.allclose(_matrices(z), expect, atol=1e-4)
    inside = 0.3 * q / torch.linalg.matrix_norm(_matrices(q), ord=2).max()  # every voxel inside the ball
    assert torch.equal(project_spectral(inside, 0.7), inside)


def test_closed_form_spectral_clip_matches_svd_on_degenerate_matrices():
    from chemtomo.recon.regularisers import _spectral_clip_three

    gen = torch.Generator().manual_seed(1)
    m = 2 * torch.randn((4, 3, 500), dtype=torch.float64, generator=gen)
    m[:, :, 0] = 3 * torch.outer(torch.randn(4, dtype=torch.float64, generator=gen),
                                 torch.randn(3, dtype=torch.float64, generator=gen))  # rank one
    m[:, :, 1] = 0
    for k, diag in enumerate([(2.0, 2.0, 2.0), (2.0, 2.0, 2.0 + 1e-9), (3.0, 0.5, 0.5 + 1e-12), (1.5, 1.5, 0.2)]):
        m[:, :, 2 + k] = 0
        for i, v in enumerate(diag):
            m[i, i, 2 + k] = v
    u, s, vh = torch.linalg.svd(m.permute(2, 0, 1), full_matrices=False)
    ref = ((u * s.clamp(max=1.0).unsqueeze(-2)) @ vh).permute(1, 2, 0)
    assert float((_spectral_clip_three(m) - ref).abs().max()) < 1e-10
    # through project_spectral (float32 in and out, float64 inside) also far outside the ball
    big = 100 * m
    u, s, vh = torch.linalg.svd(big.permute(2, 0, 1), full_matrices=False)
    ref_big = ((u * s.clamp(max=1.0).unsqueeze(-2)) @ vh).permute(1, 2, 0)
    out_big = project_spectral(big.float().reshape(4, 3, 5, 10, 10), 1.0).reshape(4, 3, -1).double()
    assert float((out_big - ref_big).abs().max()) < 1e-4
    q = m.float().reshape(4, 3, 5, 10, 10)
    before = q.clone()
    out = project_spectral(q, 0.8, inplace=True)
    assert out.data_ptr() == q.data_ptr() and not torch.equal(q, before)
    assert float(torch.linalg.matrix_norm(_matrices(out), ord=2).max()) <= 0.8 * (1 + 2e-4)
    inside = torch.linalg.matrix_norm(_matrices(before)) <= 0.8
    assert torch.equal(_matrices(out)[inside], _matrices(before)[inside])


def test_tnv_one_channel_is_tv_and_tv_couplings():
    q = torch.randn((1, 3, 4, 4, 4))
    assert torch.allclose(TNV(0.5).prox_conj(q.clone(), 1.0), TV(0.5).prox_conj(q.clone(), 1.0), atol=1e-6)
    q2 = torch.randn((2, 3, 4, 4, 4))
    joint = TV(0.5, "frobenius").prox_conj(q2, 1.0)
    norm = torch.linalg.vector_norm(joint, dim=(0, 1))
    assert float(norm.max()) <= 0.5 + 1e-6
    assert TVFromPdhg is TV  # the old import path still works
    with pytest.raises(ChemtomoError, match="coupling"):
        TGV(1.0, 4.0, "spectral")


def _denoise(reg, noisy, iterations=300):
    b = torch.from_numpy(noisy)
    return pdhg([(L2(b), Identity(noisy.shape))], reg, iterations, bounds=(None, None)).numpy()


def test_tgv_with_huge_alpha0_approaches_tv():
    rng = np.random.default_rng(0)
    truth = np.zeros((2, 16, 16), np.float32)
    truth[:, 4:12, 4:12] = 1.0
    noisy = truth + 0.2 * rng.standard_normal(truth.shape).astype(np.float32)
    tv_result = _denoise(TV(0.15), noisy)
    tgv_tv = _denoise(TGV(0.15, 1e4), noisy)
    tgv_soft = _denoise(TGV(0.15, 0.05), noisy)
    assert np.linalg.norm(tgv_tv - tv_result) / np.linalg.norm(tv_result) < 0.02  # measured 0.004
    assert np.linalg.norm(tgv_soft - tv_result) / np.linalg.norm(tv_result) > 0.05  # small alpha0 differs


def test_tgv_reconstructs_a_ramp_better_than_tv():
    rng = np.random.default_rng(1)
    x = np.linspace(0, 1, 24, dtype=np.float32)
    truth = np.broadcast_to(x, (2, 24, 24)).copy()
    noisy = truth + 0.1 * rng.standard_normal(truth.shape).astype(np.float32)
    err_tv = np.linalg.norm(_denoise(TV(0.1), noisy) - truth)
    err_tgv = np.linalg.norm(_denoise(TGV(0.1, 0.4), noisy) - truth)
    assert err_tgv < err_tv  # no staircasing


def test_tgv_coupling_changes_the_dual_projection():
    import torch as _t

    from chemtomo.recon.regularisers import TGV as _TGV

    q = _t.randn(2, 3, 4, 4, 4)
    outs = {c: _TGV(0.5, 2.0, c).blocks((2, 4, 4, 4))[0][0].prox_conj(q.clone(), 1.0) for c in ("none", "frobenius", "nuclear")}
    assert not _t.allclose(outs["none"], outs["frobenius"])
    assert not _t.allclose(outs["frobenius"], outs["nuclear"])
    # each projection lands in its own dual ball
    assert float(_t.linalg.vector_norm(outs["none"], dim=1).max()) <= 0.5 + 1e-5
    assert float(_t.linalg.vector_norm(outs["frobenius"], dim=(0, 1)).max()) <= 0.5 + 1e-5
