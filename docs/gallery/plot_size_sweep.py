"""
fastloss against torch from a mini-batch to 64 MiB
==================================================

The size sweep of the benchmark (``python -m fastloss bench --sweep --json
docs/sweep.json``) stored with these docs: for each function, the time per
call of fastloss and of its peer at each size, from the run recorded in the
file (its machine and date are printed below). The plot is drawn from the
JSON here, not timed again.
"""

import json
from pathlib import Path

import matplotlib.pyplot as plt

# the gallery runs with the docs/gallery directory as its working directory
path = Path("../sweep.json")
run = json.loads(path.read_text())
m = run["machine"]
print(f"run of {run['created']}: {m['cpu_model']}, {m['cpu_count']} CPUs, "
      f"{m['memory_gib']} GiB, Python {m['python']}")

by_case = {}
for row in run["sweep"]:
    by_case.setdefault((row["name"], row["peer"]), []).append(row)

fig, axes = plt.subplots(1, 2, figsize=(11, 4))
for (name, peer), rows in by_case.items():
    rows.sort(key=lambda r: r["bytes"])
    sizes = [r["bytes"] for r in rows]
    line, = axes[0].loglog(sizes, [r["fastloss_us"] for r in rows], "o-", ms=3,
                           label=f"{name}")
    axes[0].loglog(sizes, [r["peer_us"] for r in rows], "x--", ms=4, color=line.get_color())
    axes[1].semilogx(sizes, [r["ratio"] for r in rows], "o-", ms=3, label=f"{name} / {peer}")
    print(f"{name:40s} {peer:6s} speed-up "
          + ", ".join(f"{r['ratio']:.2f}x" for r in rows))
axes[0].set_xlabel("input bytes")
axes[0].set_ylabel("time per call, us (solid: fastloss, dashed: peer)")
axes[1].axhline(1.0, color="k", lw=0.8)
axes[1].set_xlabel("input bytes")
axes[1].set_ylabel("peer time / fastloss time")
axes[1].legend(fontsize=7)
fig.tight_layout()
plt.show()
