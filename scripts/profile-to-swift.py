#!/usr/bin/env python3
"""usage: scripts/profile-to-swift.py PROFILE.json NAME

Prints a calibrated machine profile (`convlab calibrate --output PROFILE.json`) as the Swift literal of a built-in
`MachineModel` (e.g. `intelEmeraldRapids` in Sources/ConvLabSelection/CostModel.swift), so a profile measured on a
machine kind can ship with convlab. Paste it over the old literal and keep its doc comment's provenance up to date.
"""
import json, sys

if len(sys.argv) != 3:
    sys.exit(__doc__)
profile = json.load(open(sys.argv[1]))
m = profile["model"]
e = lambda x: f"{x:.3e}"
print(f"    public static let {sys.argv[2]} = MachineModel(")
print(f"        coreFLOPs: {e(m['coreFLOPs'])}, bandwidth: {e(m['bandwidth'])}, "
      f"directEfficiency: {m['directEfficiency']}, narrowDirectEfficiency: {m['narrowDirectEfficiency']},")
print(f"        gemmEfficiency: {m['gemmEfficiency']}, winogradInputSeconds: {e(m['winogradInputSeconds'])}, "
      f"winogradBlockingSeconds: {e(m['winogradBlockingSeconds'])},")
print(f"        winogradOutputSeconds: {e(m['winogradOutputSeconds'])}, "
      f"fftSecondsPerPoint: {e(m['fftSecondsPerPoint'])}, complexProductRate: {e(m['complexProductRate'])},")
print("        corrections: [")
for key in sorted(m["corrections"]):
    c = m["corrections"][key]
    print(f'            "{key}": Correction(scale: {c["scale"]:.3f}, overhead: {c["overhead"]:.3e}),')
curve = m.get("bandwidthCurve")
if curve:
    print("        ],")
    print("        bandwidthCurve: [")
    for point in curve:
        print(f"            BandwidthPoint(bytes: {int(point['bytes']) // 1024} * 1024, "
              f"bytesPerSecond: {e(point['bytesPerSecond'])}),")
    print("        ])")
else:
    print("        ])")
