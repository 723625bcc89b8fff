"""The shared U-Net: growing its inputs keeps its output."""

import numpy as np
import torch

from chemtomo.nn.unet import add_inputs, build


def test_added_inputs_start_at_zero_weight():
    torch.manual_seed(0)
    model = build({"channels": [4, 8], "in_channels": 2}).eval()
    grown = add_inputs(model, 3).eval()
    x = torch.rand(2, 2, 16, 16)
    with torch.no_grad():
        np.testing.assert_allclose(grown(torch.cat([x, torch.rand(2, 3, 16, 16)], 1)).numpy(), model(x).numpy(),
                                   rtol=1e-5, atol=1e-6)
    assert grown.down[0][0].weight.shape[1] == 5
