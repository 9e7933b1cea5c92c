"""Text tables, the comparison with an earlier run, and the speed-up chart."""

import math

from fastloss.bench.runner import base_of


def fmt_ms(ms):
    if ms is None:
        return "-"
    if ms >= 100:
        return f"{ms:.0f}"
    if ms >= 10:
        return f"{ms:.1f}"
    if ms >= 1:
        return f"{ms:.2f}"
    return f"{ms:.3f}"


def fmt_x(x):
    if x is None:
        return "-"
    return f"{x:.0f}x" if x >= 100 else (f"{x:.1f}x" if x >= 10 else f"{x:.2f}x")


def fmt_si(n, unit):
    for scale, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= scale:
            return f"{n / scale:.3g} {prefix}{unit}"
    return f"{n:.3g} {unit}"


def fmt_pct(f):
    return "-" if f is None else f"{100 * f:.0f}%"


def previous_index(prev):
    """{(workload, impl): median_ms} of an earlier JSON run."""
    out = {}
    for w in (prev or {}).get("workloads", []):
        for name, d in w.get("impls", {}).items():
            if d.get("median_ms"):
                out[(w["name"], name)] = d["median_ms"]
    return out


def change(new_ms, old_ms):
    """Relative change of a timing: -0.25 is 25% faster than before."""
    if new_ms is None or not old_ms:
        return None
    return new_ms / old_ms - 1.0


def _check_text(d):
    chk = d.get("check")
    if not chk:
        return ""
    if chk.get("ok") is None:
        return f"({chk.get('note', 'not checked')})"
    err = chk.get("rel_err", float("inf"))
    err_s = "inf" if math.isinf(err) else f"{err:.1e}"
    if chk["ok"]:
        return f"ok {err_s} vs {chk['against']}"
    why = f" ({chk['problem']})" if chk.get("problem") else ""
    return (f"!!! DISAGREES with {chk['against']}: rel err {err_s} > rtol "
            f"{chk['rtol']:.0e}{why} !!!")


def workload_block(res, prev=None):
    """The table of one workload: one row per implementation, then the floors."""
    lines = [f"{res['name']}  [{res['family']}]  {res['description']}"]
    if res.get("quick") and res.get("inputs"):
        lines.append("  quick sizes: " + ", ".join(f"{k} {v}" for k, v in res["inputs"].items()))
    if res.get("error"):
        lines.append(f"  !!! ERROR: {res['error']}")
        return "\n".join(lines)
    rows = [("impl", "median ms", "fastloss speed-up", "GB/s", "vs prev", "check")]
    for name, d in res["impls"].items():
        if d["status"] == "missing":
            if name.startswith("fastloss"):  # peers are listed once, elsewhere
                rows.append((name, "-", "-", "-", "-", f"(not available: {d['error']})"))
            continue
        if d["status"] == "error":
            rows.append((name, "-", "-", "-", "-", f"!!! ERROR: {d['error']}"))
            continue
        ms = d.get("median_ms")
        reduced = d.get("repeats", 0) < res.get("repeat", 0)  # a slow impl, fewer rounds
        ms_s = fmt_ms(ms) + (f" (n={d['repeats']})" if reduced else "")
        if name.startswith("fastloss"):
            sp = "-"
        elif d.get("speedup") is not None:
            sp = fmt_x(d["speedup"]) + (" (vs +grad)" if base_of(name) != "fastloss" else "")
        else:
            sp = "-"
        gb = f"{d['gbps']:.2f}" if d.get("gbps") is not None else "-"
        ch = change(ms, (prev or {}).get((res["name"], name)))
        ch_s = "-" if ch is None else f"{100 * ch:+.0f}%"
        rows.append((name, ms_s, sp, gb, ch_s, _check_text(d)))
    if prev is None:  # no --compare: drop the "vs prev" column
        rows = [r[:4] + r[5:] for r in rows]
    lines.extend(_align(rows))
    parts = []
    if res.get("mem_floor_ms") is not None:
        how = ", a sum over as many bytes in the same rounds" if res.get("read_floor_ms") else ""
        parts.append(f"memory floor {fmt_ms(res['mem_floor_ms'])} ms "
                     f"({fmt_si(res['bytes_moved'], 'B')}{how})")
    if res.get("exp_floor_ms") is not None:
        parts.append(f"exp floor {fmt_ms(res['exp_floor_ms'])} ms ({fmt_si(res['n_exp'], 'exp')})")
    if res.get("pass_floor_ms") is not None:
        parts.append(f"passes floor {fmt_ms(res['pass_floor_ms'])} ms "
                     f"({fmt_si(res['pass_bytes'], 'B')} the algorithm's passes move)")
    tail = []
    if res.get("fraction_of_limit") is not None:
        tail.append(f"fastloss at {fmt_pct(res['fraction_of_limit'])} of the {res['bound']} limit")
    fl, fg = res["impls"].get("fastloss", {}), res["impls"].get("fastloss+grad", {})
    if fl.get("median_ms") and fg.get("median_ms"):
        tail.append(f"+grad costs {fg['median_ms'] / fl['median_ms']:.2f}x the loss")
        fo = res["impls"].get("fastloss+grad_out", {})
        if fo.get("median_ms"):
            tail[-1] += f" ({fo['median_ms'] / fl['median_ms']:.2f}x into a reused grad_out)"
    if parts or tail:
        lines.append("  " + "; ".join(parts) + (" -> " if parts and tail else "") + "; ".join(tail))
    return "\n".join(lines)


def summary(results, limits, threads, prev=None):
    """One row per workload: fastloss's time, speed-ups, GB/s, floors, fraction."""
    head = ("workload", "fastloss ms", "+grad ms", "GB/s", "mem floor", "exp floor",
            "% limit", "vs prev", "fastloss speed-up over peers")
    rows = [head]
    for r in results:
        if r.get("error"):
            rows.append((r["name"], "ERROR", "", "", "", "", "", "", r["error"]))
            continue
        im = r["impls"]
        fl, fg = im.get("fastloss", {}), im.get("fastloss+grad", {})
        sps = ", ".join(f"{n} {fmt_x(d['speedup'])}" for n, d in im.items()
                        if d.get("speedup") is not None)
        bad = [n for n, d in im.items() if d["status"] in ("disagrees", "error")]
        if bad:
            sps += "  !!! " + ", ".join(f"{n} {im[n]['status'].upper()}" for n in bad)
        ch = change(fl.get("median_ms"), (prev or {}).get((r["name"], "fastloss")))
        rows.append((
            r["name"], fmt_ms(fl.get("median_ms")), fmt_ms(fg.get("median_ms")),
            f"{fl['gbps']:.2f}" if fl.get("gbps") is not None else "-",
            fmt_ms(r.get("mem_floor_ms")), fmt_ms(r.get("exp_floor_ms")),
            fmt_pct(r.get("fraction_of_limit")),
            "-" if ch is None else f"{100 * ch:+.0f}%", sps,
        ))
    if prev is None:
        rows = [x[:7] + x[8:] for x in rows]
    out = [f"Summary: {threads} thread(s), read bandwidth {limits['bandwidth']['gbps']:.1f} GB/s, "
           f"exp {limits['exp']['exp_per_s'] / 1e9:.2f} G/s; floors and times in ms"]
    out.extend(_align(rows))
    return "\n".join(out)


def _align(rows):
    """Rows of cells as text lines: first column left, last free, others right-aligned."""
    k = len(rows[0]) - 1
    widths = [max(len(r[i]) for r in rows) for i in range(k)]
    return ["  " + "  ".join([r[0].ljust(widths[0])] + [r[i].rjust(widths[i]) for i in range(1, k)]
                             + [r[k]]).rstrip() for r in rows]


def plot(results, path, threads):
    """Bar chart of fastloss's speed-up over each peer, per workload, log scale.

    Returns None on success, else a message (matplotlib missing, nothing to plot).
    """
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return ("--plot: matplotlib is not installed (pip install matplotlib, or "
                "pip install 'fastloss[bench]'); no chart written")
    shown = [r for r in results
             if any(d.get("speedup") is not None for d in r.get("impls", {}).values())]
    names = [r["name"] for r in shown]
    peers = []
    for r in shown:
        for n, d in r["impls"].items():
            if d.get("speedup") is not None and n not in peers:
                peers.append(n)
    if not names or not peers:
        return "--plot: no speed-ups to plot (no peer ran); no chart written"
    fig, ax = plt.subplots(figsize=(min(16.0, max(6.0, 0.8 * len(names) + 3)), 5))
    width = 0.8 / len(peers)
    lowest = 1.0
    for i, p in enumerate(peers):
        xs, ys = [], []
        for j, r in enumerate(shown):
            sp = r["impls"].get(p, {}).get("speedup")
            if sp is not None:
                xs.append(j - 0.4 + width * (i + 0.5))
                ys.append(sp)
        bars = ax.bar(xs, ys, width, label=p)
        for b, y in zip(bars, ys):
            ax.annotate(fmt_x(y), (b.get_x() + b.get_width() / 2, y), ha="center",
                        va="bottom", fontsize=6)
        lowest = min([lowest] + ys)
    ax.set_yscale("log")
    ax.set_ylim(bottom=min(0.5, lowest / 2))
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("fastloss speed-up (peer time / fastloss time)")
    ax.set_title(f"fastloss speed-up per workload, {threads} thread(s)\n"
                 "(\"+grad\" peers vs fastloss+grad; above 1: fastloss is faster)", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return None
