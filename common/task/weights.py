"""Raw PyTorch's weights in the layouts of the channels-last frameworks (Keras, Flax, TensorFlow).

`--init torch` starts such a framework from raw PyTorch's initial weights for the seed, so that
what is left of a gap to raw PyTorch is the framework (its kernels, its optimizer's details), not
the initialization. The arrays are plain NumPy: each suite reads raw PyTorch's parameters and sets
its own layers from the result in its framework's terms.

torch keeps images NCHW and a conv kernel as (out, in, kh, kw); the others keep images NHWC and a
kernel as (kh, kw, in, out). torch's Flatten lays the last feature map out as (C, H, W), theirs as
(H, W, C), so the Dense kernel's rows must be permuted too: tests/test_init_torch.py checks that
each framework then computes raw PyTorch's function, and that it does not without the permutation.
"""

from __future__ import annotations

import math

import numpy as np


def channels_last(parameters: list[np.ndarray], permute_flatten: bool = True) -> list[np.ndarray]:
    """raw PyTorch's parameters, in its model's order (each layer's weight, then its bias), in
    the channels-last layouts, in the same order: conv kernels (kh, kw, in, out), dense kernels
    (in, out) with their rows in (H, W, C) order, biases as they are. permute_flatten=False
    leaves the rows in torch's (C, H, W) order: what a conversion that forgets it computes."""
    converted = []
    channels = 1  # what feeds the first Flatten: the image's one channel, or the last conv's
    for array in parameters:
        if array.ndim == 4:  # conv: (out, in, kh, kw) -> (kh, kw, in, out)
            converted.append(array.transpose(2, 3, 1, 0))
            channels = array.shape[0]
        elif array.ndim == 2:  # dense: (out, in) -> (in, out), in = C*H*W
            side = math.isqrt(array.shape[1] // channels)
            if permute_flatten:
                array = array.reshape(-1, channels, side, side).transpose(0, 2, 3, 1)
            converted.append(array.reshape(array.shape[0], -1).T)
            channels = 1  # a dense layer's output is flat
        else:
            converted.append(array)
    return [np.ascontiguousarray(array) for array in converted]
