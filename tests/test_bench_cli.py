"""The benchmark CLI: `python -m fastloss bench` end to end, and the runner's checks."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import fastloss
from fastloss.__main__ import main as fastloss_main
from fastloss.bench import cli, machine, report, runner
from fastloss.bench.workload import PeerMissing, Workload

# The directory holding the fastloss under test (site-packages for an
# installed wheel, the repository for an in-place build).
ROOT = Path(fastloss.__file__).resolve().parents[1]


def _bench(*args, timeout=180, cwd=None):
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run(
        [sys.executable, "-m", "fastloss", "bench", *args], cwd=cwd or tempfile_dir(), env=env,
        capture_output=True, text=True, timeout=timeout,
    )


def tempfile_dir():
    """A directory outside the source tree, so `-m fastloss` finds ROOT's package."""
    import tempfile

    return tempfile.gettempdir()


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("bench")
    path, png = d / "run.json", d / "chart.png"
    proc = _bench("--quick", "--only", "ce_wide", "--repeat", "2", "--threads", "1",
                  "--json", str(path), "--plot", str(png))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc, json.loads(path.read_text()), png, path


def test_json_structure(quick_run):
    _, doc, _, _ = quick_run
    assert doc["schema"] == cli.SCHEMA
    assert doc["options"] == {"quick": True, "threads": 1, "repeat": 2, "only": ["ce_wide"]}
    m = doc["machine"]
    for key in ("cpu_model", "cpu_count", "cpus_usable", "simd", "caches", "platform",
                "python", "versions"):
        assert key in m
    assert m["fastloss"]["version"] == fastloss.__version__
    assert m["fastloss"]["openmp"] == fastloss._openmp_enabled()
    assert m["fastloss"]["cpu_target"] in m["fastloss"]["targets_built"]
    assert m["versions"]["numpy"] == np.__version__
    assert doc["limits"]["bandwidth"]["gbps"] > 0
    assert doc["limits"]["bandwidth"]["widening_gbps"] > 0
    assert doc["limits"]["exp"]["exp_per_s"] > 0
    assert [w["name"] for w in doc["workloads"]] == ["ce_wide"]


def test_json_workload_timings_and_agreement(quick_run):
    _, doc, _, _ = quick_run
    w = doc["workloads"][0]
    assert w["family"] == "classification" and w["module"] == "core"
    assert w["bytes_moved"] > 0 and w["n_exp"] > 0
    assert w["mem_floor_ms"] > 0 and w["exp_floor_ms"] > 0
    assert w["limit_ms"] == max(w["mem_floor_ms"], w["exp_floor_ms"])
    fl = w["impls"]["fastloss"]
    assert fl["status"] == "ok"
    assert fl["repeats"] == 2 and len(fl["times_ms"]) == 2
    assert fl["median_ms"] == pytest.approx(float(np.median(fl["times_ms"])))
    assert fl["gbps"] == pytest.approx(w["bytes_moved"] / fl["median_ms"] / 1e6)
    assert w["fraction_of_limit"] == pytest.approx(w["limit_ms"] / fl["median_ms"])
    # fastloss agrees with the reference, checked by the bench itself.
    for impl in ("fastloss", "fastloss+grad"):
        chk = w["impls"][impl]["check"]
        assert chk["against"] == "reference"
        assert chk["ok"] is True and chk["rel_err"] <= w["rtol"]
    assert "check" not in w["impls"]["reference"]
    ref = w["impls"]["reference"]
    assert ref["speedup"] == pytest.approx(ref["median_ms"] / fl["median_ms"])
    for name, d in w["impls"].items():
        assert d["status"] in ("ok", "missing"), (name, d)


def test_stdout_table_and_plot(quick_run):
    proc, doc, png, _ = quick_run
    out = proc.stdout
    assert "read bandwidth" in out and "vector exp" in out and "Summary" in out
    assert "ce_wide" in out and "DISAGREES" not in out
    assert "[1/1] ce_wide (0 remaining)" in proc.stderr
    if doc["machine"]["versions"]["matplotlib"]:
        assert png.stat().st_size > 0
    else:
        assert "matplotlib is not installed" in out and not png.exists()


def test_compare_with_earlier_run(quick_run, tmp_path):
    _, _, _, path = quick_run
    new = tmp_path / "new.json"
    proc = _bench("--quick", "--only", "ce_wide", "--repeat", "1", "--threads", "1",
                  "--compare", str(path), "--json", str(new))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "vs prev" in proc.stdout
    w = json.loads(new.read_text())["workloads"][0]
    old = json.loads(path.read_text())["workloads"][0]
    assert w["previous_ms"]["fastloss"] == old["impls"]["fastloss"]["median_ms"]


# ---------------------------------------------------------------- in-process


def _toy(impls, compare_to=None, rtol=1e-6):
    def make(quick):
        return {"x": np.arange(1.0, 5.0)}

    return Workload(name="toy", family="test", description="sum of 4 numbers", make=make,
                    impls=impls, bytes_moved=lambda d: d["x"].nbytes, n_exp=lambda d: 4,
                    rtol=rtol, compare_to=compare_to or {})


def _missing(d):
    raise PeerMissing("No module named 'nosuchlib'")


def _raises(d):
    def call():
        raise RuntimeError("boom")
    return call


def test_runner_flags_disagreement_missing_and_errors():
    w = _toy({
        "fastloss": lambda d: lambda: np.float32(d["x"].sum()),
        "fastloss+grad": lambda d: lambda: (d["x"].sum(), np.ones(4)),
        "reference": lambda d: lambda: d["x"].sum(),
        "wrong": lambda d: lambda: d["x"].sum() * 1.01,
        "absent": _missing,
        "broken": _raises,
    })
    seen = []
    res = runner.run_workload(w, quick=True, threads=1, repeat=3,
                              on_missing=lambda n, m: seen.append(n))
    runner.add_limits(res, bandwidth_gbps=10.0, exp_per_s=1e9)
    im = res["impls"]
    assert seen == ["absent"]
    assert im["absent"]["status"] == "missing"
    assert im["broken"]["status"] == "error" and "boom" in im["broken"]["error"]
    assert im["fastloss"]["status"] == "ok" and im["fastloss"]["check"]["ok"] is True
    assert im["fastloss+grad"]["check"]["ok"] is True  # a tuple is checked by its loss
    assert im["wrong"]["status"] == "disagrees"
    assert im["wrong"]["check"]["rel_err"] == pytest.approx(0.01)
    assert im["fastloss"]["repeats"] == 3
    assert res["mem_floor_ms"] == pytest.approx(32 / 10e9 * 1e3)
    assert res["exp_floor_ms"] == pytest.approx(4 / 1e9 * 1e3)
    assert res["pass_floor_ms"] is None
    block = report.workload_block(res)
    assert "DISAGREES with reference" in block and "ERROR" in block
    assert "passes floor" not in block
    assert "absent" not in block  # missing peers are listed once, elsewhere


def test_passes_floor_beside_the_memory_floor():
    """A workload that must go over its data several times (a separable EDT)
    prints the floor of those passes beside the memory floor, outside the
    limit; the distance workloads count one read of the labels and a read
    and a write of the float64 field per axis."""
    w = _toy({"fastloss": lambda d: lambda: d["x"].sum()})
    w.pass_bytes = lambda d: 10 * d["x"].nbytes
    res = runner.run_workload(w, quick=True, threads=1, repeat=1)
    runner.add_limits(res, bandwidth_gbps=10.0, exp_per_s=1e9)
    assert res["pass_bytes"] == 320
    assert res["pass_floor_ms"] == pytest.approx(320 / 10e9 * 1e3)
    # the machine's floors only make the limit
    assert res["limit_ms"] == max(res["mem_floor_ms"], res["exp_floor_ms"]) < res["pass_floor_ms"]
    assert "passes floor" in report.workload_block(res)
    from fastloss.bench.workloads import distance

    edt = next(x for x in distance.WORKLOADS if x.name == "edt_256")
    assert edt.pass_bytes({"m": np.zeros((4, 5, 6), bool)}) == 120 * (1 + 16 * 3)
    hd = next(x for x in distance.WORKLOADS if x.name == "hd_dt_loss")
    d = {"x": np.zeros((2, 4, 3, 3, 3), np.float32), "y": np.zeros((2, 3, 3, 3), np.uint8)}
    # pred and target fields of 3 classes in 2 images, then logits in, gradient out
    assert hd.pass_bytes(d) == 12 * 27 * 49 + 2 * d["x"].nbytes + d["y"].nbytes


def test_runner_read_floor_timed_in_the_rounds(monkeypatch):
    monkeypatch.setattr(runner, "WARM_RUN_S", 0.0)  # one untimed call per round
    calls = []
    w = _toy({"fastloss": lambda d: lambda: d["x"].sum(),
              "reference": lambda d: lambda: d["x"].sum()})
    w.read_floor = True

    def reader(nbytes):
        calls.append(nbytes)
        return {"slow": (lambda: (time.sleep(0.002), calls.append("read"))[1],
                         lambda: calls.append("closed")),
                "fast": (lambda: calls.append("read"), lambda: calls.append("closed"))}

    res = runner.run_workload(w, quick=True, threads=1, repeat=4, floor_reader=reader)
    assert calls[0] == 32 and calls[-2:] == ["closed", "closed"]
    # each method: one warm-up, then in each round an untimed call and the timed one
    assert calls.count("read") == 2 * (1 + 2 * 4)
    assert set(res["impls"]) == {"fastloss", "reference"}
    assert res["read_floor_method"] == "fast"
    runner.add_limits(res, bandwidth_gbps=1e-3, exp_per_s=None)
    assert res["mem_floor_ms"] == res["read_floor_ms"] > 0  # not 32 bytes / the bandwidth
    assert res["fraction_of_limit"] == pytest.approx(
        res["read_floor_ms"] / res["impls"]["fastloss"]["median_ms"])
    assert "in the same rounds" in report.workload_block(res)
    w.read_floor = False
    res = runner.run_workload(w, quick=True, threads=1, repeat=1, floor_reader=reader)
    assert "read_floor_ms" not in res and calls.count("read") == 18


@pytest.mark.parametrize("n", range(1, 8))
def test_round_order_is_balanced(n):
    period = n if n % 2 == 0 else 2 * n
    rows = [runner.round_order(n, r) for r in range(period)]
    assert all(sorted(row) == list(range(n)) for row in rows)
    assert rows == [runner.round_order(n, r + period) for r in range(period)]
    firsts = [row[0] for row in rows]
    assert all(firsts.count(i) == period // n for i in range(n))
    follows = [(a, b) for row in rows for a, b in zip(row, row[1:])]
    pairs = [(a, b) for a in range(n) for b in range(n) if a != b]
    # every ordered pair of neighbours equally often; rotation alone gives (k, k+1) only
    assert sorted(set(follows)) == pairs
    assert all(follows.count(p) == len(follows) // len(pairs) for p in pairs)


def test_runner_rounds_follow_round_order(monkeypatch):
    monkeypatch.setattr(runner, "WARM_RUN_S", 0.0)  # one untimed call per round
    calls = []
    w = _toy({name: (lambda d, name=name: lambda: calls.append(name))
              for name in ("fastloss", "reference", "torch", "numpy")})
    runner.run_workload(w, quick=True, threads=1, repeat=8)
    names = ["fastloss", "reference", "torch", "numpy"]
    rounds = calls[-2 * 8 * 4:]  # after each one's value call and warm-up call
    # in each round, each implementation called twice in a row: untimed, then timed
    assert rounds == [names[i] for r in range(8) for i in runner.round_order(4, r)
                      for _ in range(2)]


def test_warm_up_calls_fill_warm_run_s(monkeypatch):
    clock = [0.0]
    monkeypatch.setattr(runner, "WARM_RUN_S", 0.01)
    monkeypatch.setattr(runner.time, "perf_counter", lambda: clock[0])

    def call(seconds):
        clock[0] += seconds
        calls.append(seconds)

    calls = []
    runner._warm(lambda: call(0.002))
    assert len(calls) == 5  # calls of 2 ms until 10 ms have passed
    calls.clear()
    runner._warm(lambda: call(0.02))
    assert len(calls) == 1  # a call longer than WARM_RUN_S: one


def test_read_floor_methods_are_the_bandwidth_methods():
    bw = machine.measure_bandwidth(1, nbytes=2**20, tries=1)
    found = machine.read_floor(1, 2**20)
    try:
        for fn, _ in found.values():
            fn()
    finally:
        for _, close in found.values():
            close()
    assert set(found) == set(bw["by_method"])
    assert "numpy.sum float32, 1 chunk(s) in threads" in found


def test_runner_compare_to_and_shapes():
    w = _toy({
        "fastloss": lambda d: lambda: d["x"] * 2,
        "reference": lambda d: lambda: d["x"] * 2,
        "same": lambda d: lambda: d["x"] * 2,
        "short": lambda d: lambda: d["x"][:3] * 2,
        "nan": lambda d: lambda: np.where(d["x"] > 3, np.nan, d["x"] * 2),
        "other": lambda d: lambda: d["x"] * 3,
    }, compare_to={"same": "fastloss", "other": None})
    im = runner.run_workload(w, quick=True, threads=1, repeat=1)["impls"]
    assert im["same"]["check"]["against"] == "fastloss" and im["same"]["status"] == "ok"
    assert "check" not in im["other"] and im["other"]["status"] == "ok"
    assert im["short"]["status"] == "disagrees" and "shape" in im["short"]["check"]["problem"]
    assert im["nan"]["status"] == "disagrees" and "NaN" in im["nan"]["check"]["problem"]


def test_matches():
    w = _toy({})
    w.module = "core"
    assert runner.matches(w, [])
    assert runner.matches(w, ["to"]) and runner.matches(w, ["t?y"]) and runner.matches(w, ["te*"])
    assert runner.matches(w, ["core"])
    assert not runner.matches(w, ["ce_wide"])
    # a pattern that names a workload selects it alone
    v = Workload(name="toy_bf16", family="half", description="", make=None, impls={},
                 bytes_moved=len)
    assert runner.matches(v, ["toy"]) and not runner.matches(v, ["toy"], {"toy", "toy_bf16"})
    assert runner.matches(v, ["toy*"], {"toy", "toy_bf16"})
    assert runner.matches(v, ["toy_bf16"], {"toy", "toy_bf16"})


def test_core_workloads_discovered():
    found, errors = runner.discover()
    assert "core" not in errors
    names = {w.name for w in found}
    assert {"ce_wide", "ce_rows", "ce_seg_u8", "ce_seg_i64", "logsumexp_wide"} <= names


def test_no_match_and_bad_options(capsys):
    assert cli.main(["--only", "no-such-workload"]) == 2
    assert "no workload matches" in capsys.readouterr().out
    assert cli.main(["--threads", "0"]) == 2
    assert cli.main(["--repeat", "0"]) == 2


def test_module_entry_point(capsys):
    assert fastloss_main([]) == 0
    assert "bench" in capsys.readouterr().out
    assert fastloss_main(["config"]) == 0
    assert "OpenMP" in capsys.readouterr().out
    assert fastloss_main(["nonsense"]) == 2


@pytest.mark.parametrize("entry", [
    "import sys, fastloss.__main__ as m; sys.exit(m.run())",    # python -m fastloss
    "import sys, fastloss.__main__ as m; sys.exit(m.main())",   # what run() guards
])
def test_closed_pipe_ends_quietly(entry):
    # `python -m fastloss config | head -1` where head has gone before the
    # output is flushed: the reader's end is closed before anything is read
    proc = subprocess.Popen([sys.executable, "-c", entry, "config"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()
    err = proc.stderr.read().decode()
    proc.wait(timeout=120)
    if entry.endswith("m.run())"):
        assert "Traceback" not in err and "BrokenPipeError" not in err, err
        assert proc.returncode == 1
    else:
        assert "BrokenPipeError" in err   # the failure run() exists for


def test_broken_workload_module_is_reported_once_and_skipped(monkeypatch):
    real = runner.importlib.import_module

    def fake(name, *args):
        if name.endswith(".core"):
            raise ImportError("simulated failure")
        return real(name, *args)

    monkeypatch.setattr(runner.importlib, "import_module", fake)
    seen = []
    found, errors = runner.discover(on_error=lambda m, msg: seen.append((m, msg)))
    assert seen == [("core", "ImportError: simulated failure")]
    assert errors == {"core": "ImportError: simulated failure"}
    assert all(w.module != "core" for w in found)


def test_sweep_json_and_table(tmp_path):
    path = tmp_path / "sweep.json"
    proc = _bench("--sweep", "--quick", "--repeat", "1", "--threads", "1", "--json", str(path),
                  timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads(path.read_text())
    rows = doc["sweep"]
    names = {r["name"] for r in rows}
    assert {"cross_entropy", "mse_loss", "binary_cross_entropy_with_logits",
            "torch.CrossEntropyLoss fwd+bwd", "torch.NLLLoss fwd+bwd",
            "torch.MultiMarginLoss fwd+bwd"} <= names
    assert {"dice_ce_loss", "torch.DiceCELoss fwd+bwd"} <= names
    for r in rows:
        assert "error" not in r, r
        assert r["fastloss_us"] > 0 and r["peer_us"] > 0
        # one round: the ratio is that round's peer / fastloss
        assert r["ratio"] == pytest.approx(r["peer_us"] / r["fastloss_us"], rel=1e-9)
        assert r["bytes"] == 4 * int(np.prod(r["size"]))
        # the node floor is timed beside every fastloss.torch row, and only there
        assert ("node_floor_us" in r) == r["name"].startswith("torch."), r
        if "node_floor_us" in r:
            assert r["node_floor_us"] > 0
    ce = [r for r in rows if r["name"] == "cross_entropy"]
    assert [tuple(r["size"]) for r in ce] == [(8, 10), (128, 100), (1024, 1000)]
    assert "peer faster at:" in proc.stdout


def test_sweep_table_names_the_slower_sizes():
    from fastloss.bench import sweep

    rows = [
        {"name": "f", "peer": "torch", "size": [8, 10], "bytes": 320, "fastloss_us": 2.0,
         "peer_us": 1.0, "ratio": 0.5},
        {"name": "f", "peer": "torch", "size": [1024], "bytes": 4096, "fastloss_us": 1.0,
         "peer_us": 3.0, "ratio": 3.0},
        {"name": "g", "peer": "monai", "size": [2], "error": "ValueError: x"},
    ]
    text = sweep.table(rows)
    assert "peer faster at: f 8x10" in text.splitlines()
    assert "4 KiB" in text and "0.50x" in text and "3.00x" in text
    assert "error: ValueError: x" in text
    assert "node floor:" not in text
    # a peer faster than the node floor is named as such
    rows[0]["node_floor_us"] = 1.5
    text = sweep.table(rows)
    assert "peer faster at: f 8x10 (peer below the node floor)" in text
    assert "1.5 us" in text and "node floor:" in text
    rows[0]["node_floor_us"] = 0.5
    assert "peer faster at: f 8x10" in sweep.table(rows).splitlines()
    rows[0]["ratio"] = 1.5
    assert "peer faster at: no size" in sweep.table(rows)


def test_exp_probe_is_the_reference_loop_not_a_kernel():
    # The floor's exp comes from src/flprobe.h: n_threads threads each summing
    # 4096 * reps exponentials.  The time per element scales with the work
    # (10x the passes take about 10x as long, within noise), and the
    # per-thread figure gives exp_per_s.
    ex = machine.measure_exp(1, tries=3, reps=200)
    assert 0.01 < ex["exp_ns"] < 100 and 0.01 < ex["log_ns"] < 100
    assert ex["exp_per_s"] == pytest.approx(1e9 / ex["exp_ns"])
    assert "flprobe.h" in ex["method"] and "logsumexp" not in ex["method"]
    probe = fastloss._dispatch.kernels("probe").math_probe
    short = min(probe(0, 1, 20) for _ in range(5))
    long = min(probe(0, 1, 2000) for _ in range(5))
    assert 0.3 < short / long < 3  # seconds per element: independent of the pass count


def test_read_probe_reads_every_element():
    # the reference read loop: one share per thread, the exact sum of small
    # integers whatever the thread count and the length's remainder
    read = fastloss._dispatch.kernels("probe").read_probe
    for n in (0, 1, 63, 64, 1000, 12345):
        a = (np.arange(n) % 7).astype(np.float32)
        for nt in (1, 2, 3):
            assert read(a, nt) == float(a.astype(np.int64).sum())
    bw = machine.measure_bandwidth(1, nbytes=16 << 20, tries=1)
    assert any("flprobe.h" in m for m in bw["by_method"])
    assert bw["gbps"] == max(bw["by_method"].values())


def test_node_floor_hands_autograd_a_gradient():
    # the floor's node does what any loss node must: x.grad of x's shape,
    # the very tensor it allocated (taken without a copy), at every step
    import types

    torch = pytest.importorskip("torch")
    from fastloss.bench import sweep

    made = []

    def empty_like(t, **kw):
        g = torch.empty_like(t, **kw)
        made.append(g.data_ptr())   # the address only: a reference would force a copy
        return g

    shim = types.SimpleNamespace(autograd=torch.autograd, nn=torch.nn, empty_like=empty_like,
                                 contiguous_format=torch.contiguous_format)
    x = torch.randn(8, 10, requires_grad=True)
    run = sweep._node_floor(shim, x)
    for _ in range(3):
        run()
        assert x.grad.shape == x.shape and x.grad.data_ptr() == made[-1]
    assert len(made) == 3
