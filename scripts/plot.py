#!/usr/bin/env python3
"""usage: python3 scripts/plot.py [DATA_DIR]   (default notebooks-data; figures go to DATA_DIR/figures)

Draws the standard convlab figures from the CSVs the scripts in scripts/ write. Each figure is a function taking an
axes, so notebooks-data/convlab.ipynb shows the same plots inline. Needs pandas and matplotlib
(pip install -r requirements.txt).
"""
import os
import re
import sys

import matplotlib.pyplot as plt
import pandas as pd

# The machine's float32 FMA limit on 2 cores (shared/TOOLCHAIN.md): effective GFLOP/s above it needs a fast algorithm.
PEAK_GFLOPS = 535.0
BACKEND_ORDER = ["im2col", "direct", "fft", "fft-tiled", "winograd-f2x3", "winograd-f4x3", "winograd-f6x3",
                 "winograd-f2x5", "winograd-f4x5"]


def read_measurements(path):
    """A sweep/bench CSV, measured rows only."""
    df = pd.read_csv(path)
    return df[df["status"] == "ok"].copy()


def time_vs_kernel(df, ax):
    """Median time per backend versus kernel size (log scale), with the kernel size where each fast family first
    beats the best direct method marked."""
    pivot = df.pivot_table(index="R", columns="backend", values="ms_median", aggfunc="min")
    for backend in [b for b in BACKEND_ORDER if b in pivot.columns]:
        ax.plot(pivot.index, pivot[backend], marker="o", label=backend)
    direct = pivot[[c for c in ["direct", "im2col"] if c in pivot.columns]].min(axis=1)
    for row, (family, color) in enumerate([("fft", "tab:red"), ("winograd", "tab:green")]):
        columns = [c for c in pivot.columns if c.startswith(family)]
        if not columns:
            continue
        fast = pivot[columns].min(axis=1)
        wins = fast.index[fast < direct]
        if len(wins):
            ax.axvline(wins[0], color=color, linestyle="--", alpha=0.6)
            ax.text(wins[0] + 0.15, 0.96 - 0.06 * row, f"{family} beats direct from {wins[0]}×{wins[0]}",
                    transform=ax.get_xaxis_transform(), color=color, fontsize=8, va="top")
    ax.set_yscale("log")
    ax.set_xlabel("kernel size R = S")
    ax.set_ylabel("median time (ms)")
    ax.set_title("Time versus kernel size (64→64 channels, 64×64)")
    ax.legend(fontsize=7, loc="lower right")


def gflops_vs_peak(df, ax):
    """Effective GFLOP/s (direct-method FLOPs / time) per suite row and backend, against the machine's peak."""
    rows = list(dict.fromkeys(df["name"]))
    for backend in [b for b in BACKEND_ORDER if b in set(df["backend"])]:
        sub = df[df["backend"] == backend].set_index("name")
        ax.scatter([rows.index(n) for n in sub.index], sub["gflops_effective"], label=backend, s=14)
    ax.axhline(PEAK_GFLOPS, color="black", linestyle="--", linewidth=1)
    ax.text(0, PEAK_GFLOPS * 1.05, f"FMA peak, 2 cores ≈ {PEAK_GFLOPS:.0f} GFLOP/s", fontsize=8)
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels(rows, rotation=70, fontsize=7)
    ax.set_yscale("log")
    ax.set_ylabel("effective GFLOP/s")
    ax.set_title("Effective throughput per suite row (above the line: fewer multiplications than direct)")
    ax.legend(fontsize=7, ncol=3)


def winograd_error(df, ax):
    """Mean and max relative error versus Winograd output tile m, per kernel size and data distribution."""
    wino = df[df["backend"] == "winograd"].copy()
    wino["m"] = wino["m"].astype(int)
    for (kernel, distribution), sub in wino.groupby(["R", "distribution"]):
        sub = sub.sort_values("m")
        line, = ax.plot(sub["m"], sub["mean_rel_error"], marker="o", label=f"{kernel}×{kernel} {distribution} mean")
        ax.plot(sub["m"], sub["max_rel_error"], marker="x", linestyle=":", color=line.get_color(),
                label=f"{kernel}×{kernel} {distribution} max")
    direct = df[(df["backend"] == "direct") & (df["distribution"] == "normal") & (df["R"] == 3)]
    if len(direct):
        ax.axhline(direct["mean_rel_error"].iloc[0], color="gray", linestyle="--", linewidth=1)
        ax.text(2, direct["mean_rel_error"].iloc[0] * 1.2, "direct method, mean", fontsize=8, color="gray")
    ax.set_yscale("log")
    ax.set_xlabel("output tile m of F(m×m, r×r)")
    ax.set_ylabel("relative error (to Σ|w||x|)")
    ax.set_title("Winograd float32 error versus tile size (64 channels)")
    ax.legend(fontsize=6, ncol=2)


def read_regret(path):
    """The table printed by `convlab select --evaluate` (scripts/selector-regret.sh)."""
    rows = []
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 6 and re.match(r"^-?[0-9.]+$", parts[-1]) and parts[0] != "row":
                rows.append({"row": parts[0], "choice": parts[1], "best": parts[2], "regret": float(parts[5])})
    return pd.DataFrame(rows)


def regret_per_row(df, ax):
    """The heuristic selector's regret (time of its choice / measured best − 1) per suite row."""
    colors = ["tab:green" if r <= 0.10 else ("tab:orange" if r <= 0.5 else "tab:red") for r in df["regret"]]
    ax.bar(range(len(df)), df["regret"], color=colors)
    ax.axhline(0.10, color="black", linestyle="--", linewidth=1)
    ax.set_xticks(range(len(df)))
    ax.set_xticklabels(df["row"], rotation=70, fontsize=7)
    ax.set_ylabel("regret")
    within = (df["regret"] <= 0.10).sum()
    ax.set_title(f"Selector regret per suite row ({within}/{len(df)} within 10%)")


def strassen_depth(df, ax):
    """Time and error of Strassen by recursion depth, relative to the native GEMM of the same size."""
    for size, sub in df.groupby("m"):
        base = sub[sub["depth"] == 0]["ms_median"].iloc[0]
        ax.plot(sub["depth"], base / sub["ms_median"], marker="o", label=f"n = {size}: speed-up")
    ax.set_xlabel("Strassen depth")
    ax.set_ylabel("speed-up over native GEMM")
    twin = ax.twinx()
    for size, sub in df.groupby("m"):
        twin.plot(sub["depth"], sub["max_rel_error"], marker="x", linestyle=":", label=f"n = {size}: max error")
    twin.set_yscale("log")
    twin.set_ylabel("max relative error")
    ax.set_title("Strassen: speed versus error by depth")
    ax.legend(fontsize=7, loc="upper left")
    twin.legend(fontsize=7, loc="lower right")


FIGURES = [
    ("kernel-sweep.csv", read_measurements, time_vs_kernel, "time-vs-kernel.png"),
    ("suite-bench.csv", read_measurements, gflops_vs_peak, "gflops-vs-peak.png"),
    ("winograd-accuracy.csv", pd.read_csv, winograd_error, "winograd-error.png"),
    ("selector-regret.txt", read_regret, regret_per_row, "selector-regret.png"),
    ("strassen-depth.csv", pd.read_csv, strassen_depth, "strassen-depth.png"),
]


def main(data_dir="notebooks-data"):
    plt.switch_backend("Agg")  # files only; the notebook imports this module and keeps its inline backend
    out = os.path.join(data_dir, "figures")
    os.makedirs(out, exist_ok=True)
    for source, reader, draw, target in FIGURES + EXTRA_FIGURES:
        path = os.path.join(data_dir, source)
        if not os.path.exists(path):
            print(f"plot: {path} missing, skipping {target}", file=sys.stderr)
            continue
        fig, ax = plt.subplots(figsize=(9, 5))
        draw(reader(path), ax)
        fig.tight_layout()
        fig.savefig(os.path.join(out, target), dpi=110)
        plt.close(fig)
        print(f"plot: wrote {os.path.join(out, target)}", file=sys.stderr)


# Figures added by later studies (layer designs, decompositions) register here.
def layer_flops_vs_time(df, ax):
    """Counted FLOPs against measured time for every layer design, one colour per C→K k×k layer: points far from
    a common line are where FLOPs mislead (fast algorithms for the standard layer, memory-bound cheap designs)."""
    df = df[df["design"] != "fully connected"]
    for (c, k, kernel, h), sub in df.groupby(["C", "K", "kernel", "H"], sort=False):
        ax.scatter(sub["flops"] / 1e6, sub["ms"], label=f"{c}→{k}, {kernel}×{kernel}, {h}×{h}")
        for _, row in sub.iterrows():
            short = row["design"].split(" (")[0].replace("depthwise separable", "depthwise").replace("ShuffleNet V2 unit", "SNv2")
            ax.annotate(short, (row["flops"] / 1e6, row["ms"]), fontsize=6, xytext=(3, 2), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("counted FLOPs (millions, direct-method)")
    ax.set_ylabel("measured ms (median)")
    ax.set_title("Layer designs: FLOPs versus measured time")
    ax.legend(fontsize=7)


def decomposition_tradeoff(df, ax):
    """Output error against measured speed-up for SVD, CP and Tucker-2 at several ranks; the FLOP reduction the
    counts promise is drawn hollow beside it."""
    markers = {"svd": "o", "cp": "s", "tucker": "^"}
    colors = dict(zip(df["kernel"].unique(), ["tab:blue", "tab:orange", "tab:green", "tab:red"]))
    for (kernel, method), sub in df.groupby(["kernel", "method"], sort=False):
        ax.plot(sub["speedup"], sub["output_error"], marker=markers.get(method, "o"), color=colors[kernel],
                label=f"{method} {kernel}")
        ax.scatter(sub["flop_reduction"], sub["output_error"], marker=markers.get(method, "o"), facecolors="none",
                   edgecolors=colors[kernel], alpha=0.5)
    ax.axvline(1.0, color="black", linewidth=1, linestyle="--")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("speed-up over the original layer (filled: measured; hollow: FLOP reduction)")
    ax.set_ylabel("relative output error")
    ax.set_title("Low-rank decompositions: accuracy versus speed")
    ax.legend(fontsize=6, ncol=3)


def training_step(df, ax):
    """Per suite row, convlab's training step (forward + backward-data + backward-weights, each by its fastest
    passing backend) stacked by pass, beside oneDNN's step from the same run; the speed-up of the step on top."""
    passes = [("forward", "tab:blue"), ("backward_data", "tab:orange"), ("backward_weights", "tab:green")]
    x = range(len(df))
    total = df["step_convlab_ms"]
    bottom = [0.0] * len(df)
    for name, color in passes:
        share = df[f"{name}_convlab_ms"] / total
        ax.bar([i - 0.2 for i in x], share, 0.4, bottom=bottom, color=color, label=f"convlab {name.replace('_', '-')}")
        bottom = [b + v for b, v in zip(bottom, share)]
    bottom = [0.0] * len(df)
    for name, color in passes:
        share = df[f"{name}_onednn_ms"] / total
        ax.bar([i + 0.2 for i in x], share, 0.4, bottom=bottom, color=color, alpha=0.45, hatch="//")
        bottom = [b + v for b, v in zip(bottom, share)]
    for i, (b, speedup) in enumerate(zip(bottom, df["step_speedup"])):
        ax.annotate(f"{speedup:.2f}×", (i, min(b, 3.0)), fontsize=6, ha="center", xytext=(0, 2), textcoords="offset points")
    ax.set_ylim(0, 3.2)
    ax.set_xticks(list(x))
    ax.set_xticklabels(df["name"], rotation=70, fontsize=7)
    ax.set_ylabel("time / convlab's step (left bar: convlab, hatched: oneDNN)")
    ax.set_title("Training step per layer: the three passes, convlab vs oneDNN (label: step speed-up)")
    ax.legend(fontsize=7, loc="upper left")


EXTRA_FIGURES = [
    ("layers.csv", pd.read_csv, layer_flops_vs_time, "layer-flops-vs-time.png"),
    ("decompositions.csv", pd.read_csv, decomposition_tradeoff, "decomposition-tradeoff.png"),
    ("training-step.csv", pd.read_csv, training_step, "training-step.png"),
]

if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "notebooks-data")
