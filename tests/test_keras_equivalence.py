"""The Keras suite computes the same function as raw PyTorch, on whichever backend is active.

Keras and torch initialize weights differently, so the two suites' trained models are never
equal. Instead raw PyTorch's trained weights are copied into the model that suites.keras builds,
converting torch's NCHW layouts to Keras' NHWC ones, and both must then predict the same class
for (nearly) every test image. A wrong conversion of the conv kernels or of the Flatten order
leaves Keras computing another function, and agreement falls far below the threshold.

KERAS_BACKEND is read when keras is imported, so this file tests the backend of its process:
`KERAS_BACKEND=jax pytest tests/test_keras_equivalence.py`, once per backend.
"""

from __future__ import annotations

import importlib

import numpy as np
import pytest

from common import task
from common.measure.hooks import TrainingHooks
from common.task import RunConfig
from conftest import task_data_for

torch = pytest.importorskip("torch", reason="torch is not installed: pip install -e '.[torch]'")
# torch.optim.Adam imports torch._dynamo, which loads triton (where installed); triton loaded
# after TensorFlow >= 2.20 segfaults (tensorflow/tensorflow#124205: TF's LLVM symbols are
# global). Load it before keras, which loads TensorFlow on the tensorflow backend.
importlib.import_module("torch._dynamo")

keras = pytest.importorskip("keras", reason="keras is not installed: pip install -e '.[keras]'")

from suites import keras as keras_suite  # noqa: E402  (after the skips: it imports keras)
from suites import raw_pytorch  # noqa: E402

if keras.backend.backend() not in keras_suite.SUITE["backends"]:
    pytest.skip(
        f"the keras suite does not run on KERAS_BACKEND={keras.backend.backend()}",
        allow_module_level=True,
    )

# As the runner does before any model: TensorFlow fixes its thread pools at its first op.
keras_suite.configure(RunConfig())

# Raw PyTorch trained for one epoch on 4,000 images (about 88% accurate: a trained function,
# not noise), compared on all 10,000 test images.
RUN = RunConfig(epochs=1, train_size=4000, test_size=None)
AGREEMENT = 0.999  # float32 sums in another order may flip a near-tie or two, no more


@pytest.fixture(scope="module")
def torch_model():
    data, _ = task_data_for(RUN)
    model = raw_pytorch.build_model(RUN)
    return raw_pytorch.train(model, data, RUN, TrainingHooks(epochs=RUN.epochs))


def test_keras_has_the_parameters_of_raw_pytorch(torch_model):
    keras_model = keras_suite.build_model(RUN)
    assert keras_suite.describe(keras_model)["parameters"] == task.PARAMETER_COUNT
    assert raw_pytorch.describe(torch_model)["parameters"] == task.PARAMETER_COUNT


def test_keras_with_raw_pytorch_weights_predicts_the_same_classes(torch_model):
    data, _ = task_data_for(RUN)
    keras_model = keras_suite.build_model(RUN)
    keras_suite.start_from_torch(keras_model, torch_model)

    expected = raw_pytorch.predict(torch_model, data.test_images)
    predicted = keras_suite.predict(keras_model, data.test_images)

    assert len(predicted) == len(expected) == 10_000
    agreement = float(np.mean(predicted == expected))
    assert agreement >= AGREEMENT, (
        f"{keras.backend.backend()}: Keras agrees with raw PyTorch on {agreement:.2%} of the "
        f"test images ({int(np.sum(predicted != expected))} differ); the weights' layout "
        f"conversion or the Keras model is wrong"
    )
