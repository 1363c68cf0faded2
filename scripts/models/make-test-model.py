#!/usr/bin/env python3
"""Writes the tiny test model of ModelGraphTests (default Tests/ConvLabTests/Fixtures/tiny-model): seeded random
weights holding every feature a manifest can hold (stride 2, asymmetric padding, dilation 2, groups, depthwise, a 5x3
kernel, add, concat, both poolings, a global pool and a linear classifier), a 2x3x17x15 input, and NumPy's float64
logits for it (numpy_net.py), which convlab's float32 and float64 runs are tested against.

usage: make-test-model.py [OUT_DIR]
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import numpy_net  # noqa: E402
from manifest import ModelWriter  # noqa: E402

here = os.path.dirname(os.path.abspath(__file__))
out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "..", "Tests", "ConvLabTests", "Fixtures",
                                                          "tiny-model")
rng = np.random.default_rng(20261130)
weight = lambda *shape: rng.normal(0, 1 / np.sqrt(np.prod(shape[1:])), shape)
bias = lambda k: rng.uniform(-0.25, 0.25, k)

m = ModelWriter(out, "tiny", (3, 17, 15), "make-test-model.py (seeded random)", "MIT",
                {"resize": 256, "crop": 15, "mean": [0.5] * 3, "std": [0.25] * 3})
m.conv("stem", "input", weight(8, 3, 3, 3), bias(8), stride=(2, 2), padding=[1, 1, 1, 1], activation="relu6")
m.conv("depthwise", "stem", weight(8, 1, 3, 3), bias(8), padding=[1, 1, 1, 1], groups=8, activation="relu")
m.conv("pointwise", "depthwise", weight(8, 8, 1, 1), bias(8), padding=[0, 0, 0, 0])
m.add("residual", "stem", "pointwise", activation="relu")
m.conv("tall", "residual", weight(6, 8, 5, 3), bias(6), padding=[5, 3, 3, 1], dilation=(2, 2), activation="relu6")
m.concat("joined", ["residual", "tall"])
m.conv("grouped", "joined", weight(8, 7, 3, 3), bias(8), padding=[1, 1, 1, 1], groups=2, activation="relu")
m.pool("maxpool", "grouped", "max_pool", (3, 3), (2, 2), [1, 1, 1, 1])
m.pool("avgpool", "maxpool", "average_pool", (2, 2), (1, 1), [0, 1, 0, 1])
m.global_average_pool("pool", "avgpool")
m.linear("classifier", "pool", weight(10, 8), bias(10))
m.save([f"class {i}" for i in range(10)])

x = rng.uniform(-1, 1, (2, 3, 17, 15)).astype(np.float32)
np.save(os.path.join(out, "input.npy"), x)
np.save(os.path.join(out, "numpy-logits.npy"), numpy_net.evaluate(out, x))
print(f"make-test-model: wrote {out}", file=sys.stderr)
