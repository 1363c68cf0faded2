"""Writes a convlab model directory: one .npy per tensor and manifest.json (format "convlab-model", version 1), the
graph `convlab infer --model DIR` runs (Sources/ConvLabNetworks/ModelManifest.swift reads it).

A model is a list of nodes in execution order; each names its inputs (the model input or earlier nodes):
  conv     weight K x C/groups x R x S, optional bias, stride [h, w], padding [top, bottom, left, right],
           dilation [h, w], groups;
  linear   weight outputs x inputs (the flattened C*H*W input), optional bias;
  add, concat (along channels), max_pool / average_pool (kernel, stride, padding; the average counts padded zeros),
  global_average_pool;
each with an optional activation "relu" or "relu6".
"""
import json
import os

import numpy as np

FORMAT, VERSION = "convlab-model", 1
IMAGENET = {"resize": 256, "crop": 224, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}


class ModelWriter:
    def __init__(self, directory, name, input_shape, source, licence, preprocessing=None):
        os.makedirs(directory, exist_ok=True)
        self.directory = directory
        self.manifest = {"format": FORMAT, "version": VERSION, "name": name,
                         "input": {"name": "input", "shape": list(input_shape)},
                         "preprocessing": preprocessing or dict(IMAGENET), "source": source, "licence": licence,
                         "output": None, "nodes": []}
        self.names = {"input"}

    def _tensor(self, name, array):
        path = f"{name}.npy"
        np.save(os.path.join(self.directory, path), np.ascontiguousarray(array, dtype=np.float32))
        return path

    def _node(self, name, op, inputs, activation=None, **fields):
        if name in self.names:
            raise ValueError(f"node name '{name}' used twice")
        missing = [i for i in inputs if i not in self.names]
        if missing:
            raise ValueError(f"node '{name}' reads {missing}, which are not earlier nodes")
        node = {"name": name, "op": op, "inputs": list(inputs)}
        if activation:
            node["activation"] = activation
        node.update(fields)
        self.manifest["nodes"].append(node)
        self.manifest["output"] = name
        self.names.add(name)
        return name

    def conv(self, name, source, weight, bias=None, stride=(1, 1), padding=None, dilation=(1, 1), groups=1,
             activation=None):
        """padding: [top, bottom, left, right]; default "same" for odd kernels at stride 1."""
        weight = np.asarray(weight)
        if weight.ndim != 4 or weight.shape[0] % groups:
            raise ValueError(f"{name}: weight {weight.shape} is not K x C/groups x R x S with K divisible by {groups}")
        if padding is None:
            r, s = weight.shape[2:]
            padding = [dilation[0] * (r - 1) // 2] * 2 + [dilation[1] * (s - 1) // 2] * 2
        fields = {"weight": self._tensor(f"{name}.weight", weight)}
        if bias is not None:
            fields["bias"] = self._tensor(f"{name}.bias", bias)
        fields.update(stride=list(stride), padding=[int(p) for p in padding], dilation=list(dilation),
                      groups=int(groups))
        return self._node(name, "conv", [source], activation, **fields)

    def linear(self, name, source, weight, bias=None, activation=None):
        fields = {"weight": self._tensor(f"{name}.weight", weight)}
        if bias is not None:
            fields["bias"] = self._tensor(f"{name}.bias", bias)
        return self._node(name, "linear", [source], activation, **fields)

    def add(self, name, a, b, activation=None):
        return self._node(name, "add", [a, b], activation)

    def concat(self, name, inputs, activation=None):
        return self._node(name, "concat", inputs, activation)

    def pool(self, name, source, op, kernel, stride, padding=(0, 0, 0, 0), activation=None):
        if op not in ("max_pool", "average_pool"):
            raise ValueError(f"unknown pooling {op}")
        return self._node(name, op, [source], activation, kernel=list(kernel), stride=list(stride),
                          padding=[int(p) for p in padding])

    def global_average_pool(self, name, source):
        return self._node(name, "global_average_pool", [source])

    def save(self, labels=None):
        if labels is not None:
            with open(os.path.join(self.directory, "labels.txt"), "w") as f:
                f.write("\n".join(labels) + "\n")
            self.manifest["labels"] = "labels.txt"
        with open(os.path.join(self.directory, "manifest.json"), "w") as f:
            json.dump(self.manifest, f, indent=1)


def fold_batch_norm(weight, bias, gamma, beta, mean, variance, eps):
    """conv then batch norm as one conv, in float64: w' = w·γ/√(σ²+ε) per output channel, b' = (b − μ)·γ/√(σ²+ε) + β."""
    scale = np.asarray(gamma, np.float64) / np.sqrt(np.asarray(variance, np.float64) + eps)
    bias = np.zeros(len(scale)) if bias is None else np.asarray(bias, np.float64)
    return (np.asarray(weight, np.float64) * scale[:, None, None, None],
            (bias - np.asarray(mean, np.float64)) * scale + np.asarray(beta, np.float64))


def same_padding(size, kernel, stride, dilation=1):
    """TensorFlow's "same" padding (before, after) for one axis: the extra pixel goes after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + dilation * (kernel - 1) + 1 - size, 0)
    return total // 2, total - total // 2
