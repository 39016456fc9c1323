"""--init torch: a channels-last framework (Keras, Flax, TensorFlow) started from raw PyTorch's
initial weights computes raw PyTorch's function before any training.

Each such suite's harness defines start_from_torch(model, torch_model, permute_flatten) and
logits_of(model, images); the conversion itself is common/task/weights.py. A suite without them is
one of the torch family, whose own init is torch's already. Keras reads KERAS_BACKEND at import,
so each backend is tested in its own process (tox runs this file once per backend).
"""

from __future__ import annotations

import importlib

import numpy as np
import pytest

from common.task import RunConfig
from conftest import task_data_for

torch = pytest.importorskip("torch", reason="torch is not installed: pip install -e '.[torch]'")
# torch.optim.Adam imports torch._dynamo, which loads triton (where installed); triton loaded
# after TensorFlow >= 2.20 segfaults (tensorflow/tensorflow#124205): load it before any suite.
importlib.import_module("torch._dynamo")

from suites import raw_pytorch  # noqa: E402  (after the guard above)

RUN = RunConfig(epochs=1, train_size=1000, test_size=500, seed=3)
IMAGES = 500
TOLERANCE = 1e-4  # float32 sums in another order, on logits of order 1


@pytest.fixture(params=["convnet", "linear"])
def run(request) -> RunConfig:
    return RUN.with_(model=request.param, init="torch")


def _converted(suite, run: RunConfig):
    if not hasattr(suite.module, "start_from_torch"):
        pytest.skip(f"{suite.variant.id} starts from torch's initialization already")
    images = task_data_for(run)[0].test_images[:IMAGES]
    torch_model = raw_pytorch.build_model(run.with_(init="framework", device="cpu")).eval()
    with torch.no_grad():
        expected = torch_model(torch.from_numpy(images).unsqueeze(1)).numpy()
    return images, torch_model, expected


def test_init_torch_computes_raw_pytorchs_function(suite, run):
    images, _, expected = _converted(suite, run)
    got = suite.module.logits_of(suite.module.build_model(run), images)
    np.testing.assert_allclose(got, expected, rtol=TOLERANCE, atol=TOLERANCE)
    # The same seed's own initialization is another function altogether.
    own = suite.module.logits_of(suite.module.build_model(run.with_(init="framework")), images)
    assert np.abs(own - expected).max() > 0.1


def test_the_conversion_needs_the_flatten_permutation(suite):
    """Guards the test above: with the Dense kernel's rows left in torch's (C, H, W) order, the
    convnet's copy computes another function."""
    run = RUN.with_(init="framework")
    images, torch_model, expected = _converted(suite, run)
    model = suite.module.build_model(run)
    suite.module.start_from_torch(model, torch_model, permute_flatten=False)
    assert np.abs(suite.module.logits_of(model, images) - expected).max() > 0.1
