#!/usr/bin/env bash
# usage: scripts/trained-decompositions.sh MODEL_DIR [OUT_DIR]     (default OUT_DIR notebooks-data/trained)
# The low-rank study on trained kernels. MODEL_DIR is the HED VGG-16 trunk (scripts/fetch-models.sh hed-vgg16 DIR):
# 13 trained 3x3 layers of 64-512 channels, the classic layers of the decomposition papers. The trunk runs on
# scikit-image's chelsea photo (224x224) in float64 NumPy, and each layer's input activation is its sample input.
# For every layer, method (svd, cp, tucker, tt) and rank (1/8 and 1/4 of the layer's width, of C·R for svd),
# `convlab decompose` reports weight error, output error on the real activation, FLOPs and measured time. The layer's
# equivalent kernel then replaces it in the trunk, and `convlab infer` gives the end-to-end error of conv5_3's features,
# one layer decomposed at a time. Beside each trained layer runs the same decomposition of a synthetic kernel of that
# shape (DecompositionStudy's generator, the synthetic study's kernels). Writes
#   OUT_DIR/decompositions-NAME.csv   layer,source,method,ranks,weight_error,output_error,end_to_end_error,
#                                     flop_reduction,ms_before,ms_after,speedup,backends_after
#   OUT_DIR/spectra-NAME.csv          layer,unfolding,rank_fraction,rank,energy (share of ‖W‖² in the leading ranks)
# CP (ALS, scalar) runs on the layers of at most 64 channels; ALS and HOOI stop at 30 iterations or a 1e-4 change.
set -euo pipefail
source "$(dirname "$0")/common.sh"
model=${1:?usage: trained-decompositions.sh MODEL_DIR [OUT_DIR]}
out=${2:-notebooks-data/trained}
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
name=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1] + '/manifest.json'))['name'])" "$model")
python3 scripts/preprocess-photo.py skimage:chelsea "$work/x.npy" --model "$model"

# 1. Each layer's input activation, and the spectra of the trained kernels' unfoldings.
PYTHONPATH=scripts/models python3 - "$model" "$work" "$out/spectra-$name.csv" <<'PY'
import csv, sys
import numpy as np
import numpy_net
model, work, spectra = sys.argv[1:]
rows, layers = [], []
def on_node(node, inputs):
    if node["op"] != "conv":
        return
    np.save(f"{work}/{node['name']}.input.npy", inputs[0].astype(np.float32))
    w = np.load(f"{model}/{node['weight']}").astype(np.float64)
    K, C, R, S = w.shape
    layers.append(f"{node['name']} {node['weight']} {K} {C} {R} {S}")
    for label, m in {"svd (C*R)x(K*S)": w.transpose(1, 2, 0, 3).reshape(C * R, K * S),
                     "mode K": w.reshape(K, -1), "mode C": w.transpose(1, 0, 2, 3).reshape(C, -1)}.items():
        energy = np.cumsum(np.linalg.svd(m, compute_uv=False) ** 2)
        energy /= energy[-1]
        for fraction in (1 / 16, 1 / 8, 1 / 4, 1 / 2):
            rank = max(1, int(round(fraction * len(energy))))
            rows.append([node["name"], label, f"{fraction:.4f}", rank, f"{energy[rank - 1]:.5f}"])
features, _ = numpy_net.forward(model, np.load(f"{work}/x.npy"), on_node)
with open(spectra, "w", newline="") as f:
    writer = csv.writer(f)
    writer.writerow(["layer", "unfolding", "rank_fraction", "rank", "energy"])
    writer.writerows(rows)
open(f"{work}/layers.txt", "w").write("\n".join(layers) + "\n")
PY

# 2. The trunk's own float32 features, the baseline of the end-to-end error.
"$CONVLAB" infer --model "$model" --input "$work/x.npy" --repeat 1 --no-check --format json \
  --output-out "$work/features.npy" > /dev/null

# 3. Every (layer, method, rank): trained and synthetic, then the trained one inside the trunk.
results=$work/results.csv
: > "$results"
while read -r layer weight K C R S; do
  for method in svd tucker tt cp; do
    if [ "$method" = cp ] && [ "$C" -gt 64 ]; then continue; fi
    width=$C; [ "$method" = svd ] && width=$(( C * R ))
    for divisor in 8 4; do
      rank=$(( width / divisor )); [ "$rank" -ge 1 ] || continue
      for source in trained synthetic; do
        kernel=(--weights "$model/$weight"); [ $source = synthetic ] && kernel=(--synthetic "$K,$C,$R,$S")
        "$CONVLAB" decompose "${kernel[@]}" --input "$work/$layer.input.npy" --method $method --rank $rank \
          --pad $(( (R - 1) / 2 )) --threads "$THREADS" --max-iterations 30 --tolerance 1e-4 --format csv \
          --approximation-out "$work/approx.npy" | tail -1 | sed "s|^|$layer,$source,|" > "$work/row.csv"
        end_to_end=
        if [ $source = trained ]; then
          # The trunk with this one layer's kernel replaced by the decomposition's equivalent kernel.
          rm -rf "$work/model" && mkdir "$work/model"
          for f in "$model"/*; do ln -s "$(cd "$(dirname "$f")" && pwd)/$(basename "$f")" "$work/model/"; done
          rm "$work/model/$weight" && cp "$work/approx.npy" "$work/model/$weight"
          "$CONVLAB" infer --model "$work/model" --input "$work/x.npy" --repeat 1 --no-check --format json \
            --output-out "$work/decomposed.npy" > /dev/null
          end_to_end=$(python3 -c "import numpy as np,sys; a,b=np.load(sys.argv[1]),np.load(sys.argv[2]); \
print(f'{np.linalg.norm(a-b)/np.linalg.norm(a):.5e}')" "$work/features.npy" "$work/decomposed.npy")
        fi
        sed "s|\$|,$end_to_end|" "$work/row.csv" >> "$results"
      done
      echo "trained-decompositions: $layer $method rank $rank" >&2
    done
  done
done < "$work/layers.txt"

# 4. One table: the decompose CSV's columns (see convlab decompose) with the layer, the source and the end-to-end error.
python3 - "$results" "$out/decompositions-$name.csv" <<'PY'
import csv, sys
header = ("layer,source,method,ranks,weight_error,output_error,params_before,params_after,flops_before,flops_after,"
          "flop_reduction,ms_before,ms_after,speedup,backends_after,iterations,stop_reason,convlab_version,git_commit,"
          "cpu,date,end_to_end_error").split(",")
keep = ["layer", "source", "method", "ranks", "weight_error", "output_error", "end_to_end_error", "flop_reduction",
        "ms_before", "ms_after", "speedup", "backends_after"]
rows = [dict(zip(header, r)) for r in csv.reader(open(sys.argv[1]))]
with open(sys.argv[2], "w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=keep, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
print(f"wrote {sys.argv[2]} ({len(rows)} rows)", file=sys.stderr)
PY
