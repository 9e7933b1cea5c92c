"""pytest-benchmark suite over the workloads of ``fastloss/bench/workloads/``.

The same definitions (sizes, peers, tolerances) as ``python -m fastloss
bench``; one benchmark per (workload, implementation), grouped by workload
so pytest-benchmark's table compares the implementations side by side.
Every benchmarked value is also checked against the reference.

    pytest benchmarks/ --benchmark-only                  # full sizes
    pytest benchmarks/ --benchmark-only --bench-quick    # small sizes
    pytest benchmarks/ --benchmark-only -k ce_wide --bench-threads 1

Peers that are not installed are skipped.  Inputs are made once per
workload and dropped when the next workload starts (tests run in workload
order).
"""

import warnings

import pytest

from fastloss.bench import runner
from fastloss.bench.workload import PeerMissing

_DISCOVERED = None


def _workloads():
    global _DISCOVERED
    if _DISCOVERED is None:
        found, errors = runner.discover()
        for module, msg in errors.items():
            warnings.warn(f"workload module {module!r} skipped: {msg}", stacklevel=1)
        _DISCOVERED = found
    return _DISCOVERED


def pytest_addoption(parser):
    group = parser.getgroup("fastloss bench")
    group.addoption("--bench-quick", action="store_true", default=False,
                    help="small workload sizes (as `python -m fastloss bench --quick`)")
    group.addoption("--bench-threads", type=int, default=None,
                    help="threads for every implementation (default fastloss.get_num_threads())")


def pytest_generate_tests(metafunc):
    """Parametrize ``case`` with (workload, impl) pairs of the test module's MODULES."""
    if "case" not in metafunc.fixturenames:
        return
    modules = getattr(metafunc.module, "MODULES", None)
    exclude = getattr(metafunc.module, "EXCLUDE_MODULES", ())
    params, ids = [], []
    for w in _workloads():
        if (modules is not None and w.module not in modules) or w.module in exclude:
            continue
        for impl in w.impls:
            params.append((w, impl))
            ids.append(f"{w.name}-{impl}")
    metafunc.parametrize("case", params, ids=ids)


class _Inputs:
    """The inputs of the current workload, and the values checked against."""

    def __init__(self, quick, threads):
        self.quick, self.threads = quick, threads
        self.name, self.data, self.values = None, None, {}

    def data_for(self, w):
        if self.name != w.name:
            self.name, self.data, self.values = None, None, {}  # drop the previous inputs
            data = w.make(self.quick)
            data["n_threads"] = self.threads
            self.name, self.data = w.name, data
        return self.data

    def value_of(self, w, impl):
        if impl not in self.values:
            self.values[impl] = runner.as_value(w.impls[impl](self.data_for(w))())
        return self.values[impl]


@pytest.fixture(scope="session")
def bench_inputs(request):
    import fastloss

    threads = request.config.getoption("--bench-threads") or fastloss.get_num_threads()
    return _Inputs(request.config.getoption("--bench-quick"), threads)


@pytest.fixture
def run_case(benchmark, bench_inputs):
    """Benchmark one (workload, impl) case and check its value."""

    def run(case):
        w, impl = case
        data = bench_inputs.data_for(w)
        try:
            fn = w.impls[impl](data)
        except PeerMissing as e:
            pytest.skip(f"{impl} not available: {e}")
        benchmark.group = w.name
        benchmark.extra_info.update(
            workload=w.name, family=w.family, description=w.description, impl=impl,
            threads=bench_inputs.threads, bytes_moved=int(w.bytes_moved(data)),
        )
        value = runner.as_value(benchmark(fn))
        default = "reference" if "reference" in w.impls else "fastloss"
        against = w.compare_to.get(impl, default)
        if against is None or against == impl:
            return
        try:
            expected = bench_inputs.value_of(w, against)
        except PeerMissing:
            return
        err, problem = runner.rel_error(value, expected)
        assert err <= w.rtol, (
            f"{w.name}/{impl} DISAGREES with {against}: rel err {err:.2e} > rtol {w.rtol:.0e}"
            + (f" ({problem})" if problem else ""))

    return run
