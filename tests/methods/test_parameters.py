"""The one parameter counter (methods.engine.parameters.count_parameters)."""

from __future__ import annotations

import subprocess
import sys

from torch import nn

from msbench.methods.engine import count_parameters


def test_counts_trainable_parameters_by_default_and_every_one_on_request() -> None:
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))  # 16 + 10 parameters
    model[0].weight.requires_grad_(False)  # 12 frozen
    assert count_parameters(model) == 14
    assert count_parameters(model, trainable_only=False) == 26


def test_a_shared_tensor_counts_once() -> None:
    layer = nn.Linear(2, 2)
    assert count_parameters(nn.Sequential(layer, layer)) == 6


def test_the_counter_imports_without_torch() -> None:
    code = "import sys; import msbench.methods.engine.parameters; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_method_counters_and_the_nnunet_predictor_use_the_one_counter() -> None:
    from msbench.methods.engine import parameters
    from msbench.methods.nnunet2d import _predictor
    from msbench.methods.unet3d import network

    assert network.count_module_parameters is parameters.count_parameters
    assert _predictor.count_parameters is parameters.count_parameters
    assert count_parameters(network.build_network({"base_width": 2, "levels": 2}, 1)) == network.count_parameters(
        {"base_width": 2, "levels": 2}
    )
