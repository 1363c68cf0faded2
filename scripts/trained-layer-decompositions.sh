#!/usr/bin/env bash
# usage: scripts/trained-layer-decompositions.sh MODEL_DIR [OUT_DIR] [LAYERS]   (default OUT_DIR notebooks-data/trained)
# The decomposition papers' practical claims on a trained classifier, one layer at a time: "do not factorise the
# layer closest to the input" and "low rank costs little accuracy where the layer is wide". MODEL_DIR is a classifier
# from scripts/fetch-models.sh (MobileNetV2 by default: its one dense 3x3 layer is the stem, the layer closest to the
# input, and its 1x1 layers are the dense layers after it). LAYERS (space separated node names) defaults to the stem,
# three 1x1 layers from early to late and the last 1x1 conv. For every layer, method (svd for all; tucker and tt
# for kernels larger than 1x1) and rank (1/4, 1/2, 3/4 of the largest rank the method allows):
#   1. `convlab decompose` on the trained kernel: weight error, output error on the layer's real input activation
#      (scikit-image's chelsea, from the float64 NumPy network), FLOPs saved;
#   2. the network with that one layer replaced by the decomposition's equivalent kernel runs on 19 photos
#      (`convlab infer`): top-1 and ordered top-5 agreement with the unmodified network, max |logit change|.
# Writes OUT_DIR/layer-decompositions-NAME.csv:
#   layer,kernel,method,rank,weight_error,output_error,flop_reduction,top1_agree,top5_agree,images,max_logit_change
set -euo pipefail
source "$(dirname "$0")/common.sh"
model=${1:?usage: trained-layer-decompositions.sh MODEL_DIR [OUT_DIR] [LAYERS]}
out=${2:-notebooks-data/trained}
layers=${3:-features.0 features.1.project features.4.expand features.11.project features.18}
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
name=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1] + '/manifest.json'))['name'])" "$model")
photos="astronaut chelsea coffee rocket hubble_deep_field immunohistochemistry retina colorwheel camera moon page text coins clock brick grass gravel horse cell"
# shellcheck disable=SC2046
python3 scripts/preprocess-photo.py $(for p in $photos; do echo "skimage:$p"; done) "$work/photos.npy" --model "$model"
python3 scripts/preprocess-photo.py skimage:chelsea "$work/chelsea.npy" --model "$model"

# Each chosen layer's input activation on chelsea and its geometry, from the float64 NumPy network.
PYTHONPATH=scripts/models python3 - "$model" "$work" $layers <<'PY'
import sys
import numpy as np
import numpy_net
model, work, wanted = sys.argv[1], sys.argv[2], sys.argv[3:]
found = []
def on_node(node, inputs):
    if node["name"] in wanted and node["op"] == "conv":
        np.save(f"{work}/{node['name']}.input.npy", inputs[0].astype(np.float32))
        w = np.load(f"{model}/{node['weight']}")
        K, C, R, S = w.shape
        t, b, l, r = node.get("padding", [0] * 4)
        found.append(f"{node['name']} {node['weight']} {K} {C} {R} {S} {node.get('stride', [1, 1])[0]},"
                     f"{node.get('stride', [1, 1])[1]} {t},{b},{l},{r} {node.get('groups', 1)}")
numpy_net.forward(model, np.load(f"{work}/chelsea.npy"), on_node)
missing = set(wanted) - {f.split()[0] for f in found}
if missing:
    sys.exit(f"trained-layer-decompositions: no conv node named {sorted(missing)}")
open(f"{work}/layers.txt", "w").write("\n".join(found) + "\n")
PY

run_network() {  # run_network MODEL_DIR LOGITS.npy JSON
  "$CONVLAB" infer --model "$1" --input "$work/photos.npy" --repeat 1 --no-check --top 5 --format json \
    --threads "$THREADS" --output-out "$2" > "$3"
}
run_network "$model" "$work/base.npy" "$work/base.json"

results=$work/results.csv
echo "layer,kernel,method,rank,weight_error,output_error,flop_reduction,top1_agree,top5_agree,images,max_logit_change" \
  > "$results"
while read -r layer weight K C R S stride pad groups; do
  if [ "$groups" != 1 ]; then echo "trained-layer-decompositions: $layer is grouped, skipped" >&2; continue; fi
  methods=svd; [ "$R$S" != 11 ] && methods="svd tucker tt"
  for method in $methods; do
    # svd's rank is capped at min(C·R, K·S); tucker and tt cap each rank at its unfolding (C on the input side).
    if [ $method = svd ]; then full=$(( C * R < K * S ? C * R : K * S )); else full=$(( C > K ? C : K )); fi
    previous=0
    for quarters in 1 2 3; do
      rank=$(( full * quarters / 4 )); [ "$rank" -ge 1 ] || rank=1
      [ "$rank" -gt "$previous" ] || continue
      previous=$rank
      "$CONVLAB" decompose --weights "$model/$weight" --input "$work/$layer.input.npy" --method $method \
        --rank $rank --stride "$stride" --pad "$pad" --no-run --max-iterations 30 --tolerance 1e-4 --format json \
        --approximation-out "$work/approx.npy" > "$work/decompose.json"
      rm -rf "$work/model" && mkdir "$work/model"
      for f in "$model"/*; do ln -s "$(cd "$(dirname "$f")" && pwd)/$(basename "$f")" "$work/model/"; done
      rm "$work/model/$weight" && cp "$work/approx.npy" "$work/model/$weight"
      run_network "$work/model" "$work/decomposed.npy" "$work/decomposed.json"
      python3 - "$work" "$layer" "${K}x${C}x${R}x${S}" "$method" "$rank" >> "$results" <<'PY'
import json, sys
import numpy as np
work, layer, kernel, method, rank = sys.argv[1:]
d = json.load(open(f"{work}/decompose.json"))
d = d[0] if isinstance(d, list) else d
def tops(path):
    r = json.load(open(path))
    by = {}
    for t in sorted(r["top"], key=lambda t: (t["image"], t["rank"])):
        by.setdefault(t["image"], []).append(t["classIndex"])
    return by
base, new = tops(f"{work}/base.json"), tops(f"{work}/decomposed.json")
top1 = sum(base[i][0] == new[i][0] for i in base)
top5 = sum(base[i] == new[i] for i in base)
change = float(np.abs(np.load(f"{work}/base.npy") - np.load(f"{work}/decomposed.npy")).max())
print(f"{layer},{kernel},{method},{rank},{d['weightError']:.4e},{d['outputError']:.4e},{d['flopsBefore'] / d['flopsAfter']:.3f},"
      f"{top1},{top5},{len(base)},{change:.4e}")
PY
      echo "trained-layer-decompositions: $layer $method rank $rank: $(tail -1 "$results")" >&2
    done
  done
done < "$work/layers.txt"
cp "$results" "$out/layer-decompositions-$name.csv"
echo "wrote $out/layer-decompositions-$name.csv" >&2
