"""The shared training loop: the progress bar's loss and non-finite losses."""

import numpy as np
import pytest
import torch

from chemtomo.core.errors import ChemtomoError
from chemtomo.nn.fit import fit


def _line_fit(loss_scale=1.0):
    model = torch.nn.Linear(1, 1)
    x = torch.linspace(-1, 1, 16)[:, None]

    def loss(step):
        return loss_scale * ((model(x) - 2 * x) ** 2).mean()

    return model, loss


@pytest.mark.parametrize("steps", [20, 23])  # 20: the budget ends on a curve point, which emptied the bar's mean
def test_progress_bar_shows_a_finite_loss_when_it_ends(steps, capsys):
    model, loss = _line_fit()
    record = fit(model, loss, steps=steps, every=10, lr=1e-2, check=lambda s: {"score": float(loss(s))},
                 keep_best="score", label="toy", progress=True)
    shown = capsys.readouterr().out.strip().splitlines()[-1]
    assert "nan" not in shown
    value = float(shown.split("loss ")[1].split()[0])
    assert np.isfinite(value) and value == pytest.approx(np.mean([c["train_loss"] for c in record["curve"][1:]]),
                                                         rel=0.5)
    assert all(np.isfinite(c["train_loss"]) for c in record["curve"][1:])


def test_a_non_finite_loss_stops_training_with_a_clear_error():
    model, loss = _line_fit(float("inf"))
    with pytest.raises(ChemtomoError, match="training loss is inf at step 1"):
        fit(model, loss, steps=5, label="toy")
