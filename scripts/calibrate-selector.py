#!/usr/bin/env python3
"""usage: scripts/calibrate-selector.py [CALIBRATION.csv]   (default notebooks-data/selector-calibration.csv)

Fits the selector's per-backend corrections, measured ≈ scale × physical + overhead, by least squares on
log(time) over a calibration sweep (shapes unlike the benchmark suite), and prints them as Swift for
a MachineModel (MachineModel.amdZen5 was fitted this way; `convlab calibrate` fits a
profile on any machine without Python). Needs numpy and scipy.
"""
import csv, io, subprocess, sys
import numpy as np
from scipy.optimize import least_squares

path = sys.argv[1] if len(sys.argv) > 1 else "notebooks-data/selector-calibration.csv"
out = subprocess.run([".build/release/convlab", "select", "--model-check", path, "--dump"],
                     capture_output=True, text=True, check=True).stdout
rows = list(csv.DictReader(io.StringIO(out)))
by_backend = {}
for r in rows:
    if float(r["measured_s"]) > 0 and float(r["physical_s"]) > 0:
        by_backend.setdefault(r["correction"], []).append((float(r["measured_s"]), float(r["physical_s"])))
print("        corrections: [")
for backend in sorted(by_backend):
    data = np.array(by_backend[backend])
    measured, physical = data[:, 0], data[:, 1]
    def residual(p):
        scale, overhead = np.exp(p[0]), np.exp(p[1])
        return np.log(scale * physical + overhead) - np.log(measured)
    fit = least_squares(residual, x0=[0.0, np.log(2e-5)])
    scale, overhead = np.exp(fit.x)
    spread = np.exp(np.percentile(np.abs(fit.fun), 90))
    print(f'            "{backend}": Correction(scale: {scale:.3f}, overhead: {overhead:.3e}),  '
          f'// {len(measured)} rows, 90% within {spread:.2f}x')
print("        ])")
