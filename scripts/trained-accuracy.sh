#!/usr/bin/env bash
# usage: scripts/trained-accuracy.sh MODEL_DIR [OUT_DIR]     (default OUT_DIR notebooks-data/trained)
# The accuracy question of the Winograd and FFT papers, on trained weights: the model (from scripts/fetch-models.sh)
# runs on scikit-image's sample photos under each policy below; each run is compared with the same network in
# float64 (convlab infer's float64 run, itself checked against NumPy in the tests). Writes
#   OUT_DIR/trained-accuracy-NAME.csv   policy,images,top1_agree,top5_agree,max_logit_error,relative_logit_error,
#                                       ms,backends (convolutions per backend)
#   OUT_DIR/trained-accuracy-NAME.png   max logit error per policy
# Policies: the selector's choice; direct only; im2col only; Winograd F(4,3), F(6,3), F(8,3) wherever it applies
# (F(8,3) with --allow-inaccurate: its bound is above the default ceiling, which is the point); FFT and tiled FFT
# wherever they apply; im2col on Strassen depth 2 (cutoff 16, so every GEMM recurses).
set -euo pipefail
source "$(dirname "$0")/common.sh"
model=${1:?usage: trained-accuracy.sh MODEL_DIR [OUT_DIR]}
out=${2:-notebooks-data/trained}
mkdir -p "$out"
name=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1] + '/manifest.json'))['name'])" "$model")
photos="astronaut chelsea coffee rocket hubble_deep_field immunohistochemistry retina colorwheel camera moon page text coins clock brick grass gravel horse cell"
input=$(mktemp --suffix=.npy)
trap 'rm -f "$input" "$input".*.json' EXIT
# shellcheck disable=SC2046
python3 scripts/preprocess-photo.py $(for p in $photos; do echo "skimage:$p"; done) "$input" --model "$model"
policies=(
  "selector|"
  "direct-only|--backend direct"
  "im2col-only|--backend im2col"
  "winograd-F4|--prefer winograd --winograd-tile 4"
  "winograd-F6|--prefer winograd --winograd-tile 6"
  "winograd-F8|--prefer winograd --winograd-tile 8 --allow-inaccurate"
  "fft|--prefer fft"
  "fft-tiled|--prefer fft-tiled"
  "strassen-2|--backend im2col --gemm strassen --strassen-depth 2 --strassen-cutoff 16"
)
for entry in "${policies[@]}"; do
  label=${entry%%|*} flags=${entry#*|}
  # shellcheck disable=SC2086
  "$CONVLAB" infer --model "$model" --input "$input" --format json --repeat 3 --threads "$THREADS" $flags \
    > "$input.$label.json"
  echo "trained-accuracy: $name $label done" >&2
done
python3 - "$name" "$out" "$input" "${policies[@]}" <<'PY'
import collections, csv, json, sys
name, out, input_path, entries = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
rows = []
for entry in entries:
    label = entry.split("|", 1)[0]
    r = json.load(open(f"{input_path}.{label}.json"))
    backends = collections.Counter(n["backend"].split(" ")[0] + (" " + n["backend"].split(" ")[1]
                                   if n["backend"].startswith("winograd") else "")
                                   for n in r["nodes"] if n.get("backend"))
    rows.append({"policy": label, "images": r["inputShape"][0], "top1_agree": r["top1Agreement"],
                 "top5_agree": r["topKAgreement"], "max_logit_error": f"{r['maxLogitError']:.3e}",
                 "relative_logit_error": f"{r['relativeLogitError']:.3e}", "ms": f"{r['totalSeconds'] * 1e3:.2f}",
                 "backends": " ".join(f"{b}:{c}" for b, c in sorted(backends.items()))})
path = f"{out}/trained-accuracy-{name}.csv"
with open(path, "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=list(rows[0]))
    w.writeheader()
    w.writerows(rows)
for row in rows:
    print(",".join(str(v) for v in row.values()))
try:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(8, 3.5))
    ax.bar([r["policy"] for r in rows], [float(r["max_logit_error"]) for r in rows], color="#4477aa")
    ax.set_yscale("log")
    ax.set_ylabel("max |logit - float64 logit|")
    ax.set_title(f"{name}: {rows[0]['images']} photos, each policy against the float64 network")
    plt.setp(ax.get_xticklabels(), rotation=30, ha="right")
    fig.tight_layout()
    fig.savefig(f"{out}/trained-accuracy-{name}.png", dpi=120)
except ImportError:
    print("trained-accuracy: matplotlib missing, no figure", file=sys.stderr)
PY
echo "wrote $out/trained-accuracy-$name.csv" >&2
