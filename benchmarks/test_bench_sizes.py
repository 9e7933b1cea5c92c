"""The size sweep under pytest-benchmark: fastloss and its peer, from a mini-batch up.

The cases of ``python -m fastloss bench --sweep`` (``fastloss.bench.sweep``),
one benchmark per (function, size, implementation), grouped by function
and size so that the table compares fastloss and the peer side by side.
``--bench-quick`` keeps the short sweep's sizes.

    pytest benchmarks/test_bench_sizes.py --benchmark-only --bench-quick
"""

import pytest

from fastloss.bench import sweep


def pytest_generate_tests(metafunc):
    if "size_case" not in metafunc.fixturenames:
        return
    quick = metafunc.config.getoption("--bench-quick")
    threads = metafunc.config.getoption("--bench-threads")
    if threads is None:
        import fastloss
        threads = fastloss.get_num_threads()
    cases = sweep._cases(quick, threads)
    params = [(c, impl) for c in cases for impl in ("fastloss", c.peer)]
    ids = [f"{c.name}-{'x'.join(map(str, c.size))}-{impl}".replace(" ", "_")
           for c, impl in params]
    metafunc.parametrize("size_case", params, ids=ids)


def test_bench_size(size_case, benchmark):
    case, impl = size_case
    benchmark.group = f"{case.name} {'x'.join(map(str, case.size))}"
    try:
        fl, peer, _ = case.make()
    except ImportError as e:
        pytest.skip(f"peer not installed: {e}")
    benchmark(fl if impl == "fastloss" else peer)
