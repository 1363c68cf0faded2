#!/usr/bin/env python3
"""Turns a photo into the N×3×224×224 float32 .npy that `convlab infer` reads: shorter side resized to 256
(bilinear), centre crop 224, scaled to [0, 1], then (x − mean) / std per channel (ImageNet's unless the model's
manifest says otherwise).

usage: preprocess-photo.py PHOTO [PHOTO...] OUT.npy [--model MODEL_DIR]
  PHOTO is an image file, or skimage:NAME for one of scikit-image's bundled photos (chelsea, astronaut, coffee, ...).
"""
import json
import os
import sys

import numpy as np
from PIL import Image


def load(photo):
    if photo.startswith("skimage:"):
        from skimage import data
        return Image.fromarray(getattr(data, photo.split(":", 1)[1])())
    return Image.open(photo)


def preprocess(image, resize, crop, mean, std):
    image = image.convert("RGB")
    w, h = image.size
    scale = resize / min(w, h)
    image = image.resize((max(crop, round(w * scale)), max(crop, round(h * scale))), Image.BILINEAR)
    w, h = image.size
    left, top = (w - crop) // 2, (h - crop) // 2
    x = np.asarray(image.crop((left, top, left + crop, top + crop)), dtype=np.float64) / 255.0
    x = (x - np.array(mean)) / np.array(std)
    return x.transpose(2, 0, 1).astype(np.float32)


if __name__ == "__main__":
    args = sys.argv[1:]
    settings = {"resize": 256, "crop": 224, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
    if "--model" in args:
        i = args.index("--model")
        manifest = json.load(open(os.path.join(args[i + 1], "manifest.json")))
        settings.update(manifest.get("preprocessing", {}))
        del args[i:i + 2]
    if len(args) < 2:
        sys.exit(__doc__)
    batch = np.stack([preprocess(load(p), settings["resize"], settings["crop"], settings["mean"], settings["std"])
                      for p in args[:-1]])
    np.save(args[-1], batch)
    print(f"preprocess-photo: {batch.shape} -> {args[-1]}", file=sys.stderr)
