#!/usr/bin/env python3
"""A model directory's network (scripts/models/manifest.py's format) evaluated in float64 NumPy, straight from the
manifest's definitions: the independent reference convlab's `infer` is tested against.

usage: numpy_net.py MODEL_DIR INPUT.npy [--top K]
  prints K lines per image, `image,rank,class,probability,label` (no header; softmax of the output).
"""
import json
import os
import sys

import numpy as np


def load(directory):
    manifest = json.load(open(os.path.join(directory, "manifest.json")))
    if manifest.get("format") != "convlab-model" or manifest.get("version") != 1:
        raise ValueError(f"{directory}: not a convlab-model version 1 manifest")
    return manifest


def conv2d(x, w, stride=(1, 1), padding=(0, 0, 0, 0), dilation=(1, 1), groups=1):
    """Cross-correlation, NCHW x KCRS, one grouped matrix product per kernel tap."""
    n, c, h, width = x.shape
    k, cg, r, s = w.shape
    top, bottom, left, right = padding
    xp = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
    ho = (h + top + bottom - dilation[0] * (r - 1) - 1) // stride[0] + 1
    wo = (width + left + right - dilation[1] * (s - 1) - 1) // stride[1] + 1
    wg = w.reshape(groups, k // groups, cg, r, s)
    y = np.zeros((n, groups, k // groups, ho, wo))
    for i in range(r):
        for j in range(s):
            a, b = i * dilation[0], j * dilation[1]
            window = xp[:, :, a:a + stride[0] * (ho - 1) + 1:stride[0], b:b + stride[1] * (wo - 1) + 1:stride[1]]
            y += np.einsum("ngchw,gkc->ngkhw", window.reshape(n, groups, cg, ho, wo), wg[:, :, :, i, j])
    return y.reshape(n, k, ho, wo)


def pool(x, kernel, stride, padding, maximum):
    """Max pooling over the padded window, or the average counting padded zeros (PyTorch's count_include_pad)."""
    top, bottom, left, right = padding
    xp = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)), constant_values=-np.inf if maximum else 0)
    ho = (xp.shape[2] - kernel[0]) // stride[0] + 1
    wo = (xp.shape[3] - kernel[1]) // stride[1] + 1
    windows = [xp[:, :, i:i + stride[0] * (ho - 1) + 1:stride[0], j:j + stride[1] * (wo - 1) + 1:stride[1]]
               for i in range(kernel[0]) for j in range(kernel[1])]
    return np.max(windows, axis=0) if maximum else np.sum(windows, axis=0) / (kernel[0] * kernel[1])


def forward(directory, x, on_node=None):
    """(output, manifest) for the batch x (N x C x H x W); on_node(node, inputs) sees each node's inputs first."""
    manifest = load(directory)
    tensor = lambda name: np.load(os.path.join(directory, name)).astype(np.float64)
    values = {manifest["input"]["name"]: np.asarray(x, np.float64)}
    for node in manifest["nodes"]:
        inputs = [values[i] for i in node["inputs"]]
        if on_node:
            on_node(node, inputs)
        op = node["op"]
        if op == "conv":
            y = conv2d(inputs[0], tensor(node["weight"]), node.get("stride", [1, 1]), node.get("padding", [0] * 4),
                       node.get("dilation", [1, 1]), node.get("groups", 1))
        elif op == "linear":
            y = inputs[0].reshape(len(inputs[0]), -1) @ tensor(node["weight"]).T
        elif op == "add":
            y = inputs[0] + inputs[1]
        elif op == "concat":
            y = np.concatenate(inputs, axis=1)
        elif op in ("max_pool", "average_pool"):
            y = pool(inputs[0], node["kernel"], node.get("stride", [1, 1]), node.get("padding", [0] * 4),
                     op == "max_pool")
        elif op == "global_average_pool":
            y = inputs[0].mean(axis=(2, 3), keepdims=True)
        else:
            raise ValueError(f"node '{node['name']}': unknown op '{op}'")
        if node.get("bias"):
            b = tensor(node["bias"])
            y = y + (b if y.ndim == 2 else b[:, None, None])
        if node.get("activation") == "relu":
            y = np.maximum(y, 0)
        elif node.get("activation") == "relu6":
            y = np.clip(y, 0, 6)
        values[node["name"]] = y
    return values[manifest["output"]], manifest


def evaluate(directory, x):
    """The output (logits for a classifier) in float64."""
    return forward(directory, x)[0]


if __name__ == "__main__":
    args = sys.argv[1:]
    top = 5
    if "--top" in args:
        i = args.index("--top")
        top = int(args[i + 1])
        del args[i:i + 2]
    if len(args) != 2:
        sys.exit(__doc__)
    logits, manifest = forward(args[0], np.load(args[1]))
    logits = logits.reshape(len(logits), -1)
    labels = []
    if manifest.get("labels"):
        labels = open(os.path.join(args[0], manifest["labels"])).read().splitlines()
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    for image, row in enumerate(p):
        for rank, c in enumerate(np.argsort(-row, kind="stable")[:top]):
            print(f"{image},{rank + 1},{c},{row[c]:.6f},{labels[c] if c < len(labels) else c}")
