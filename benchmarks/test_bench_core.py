"""Benchmarks of the core workloads: cross-entropy, NLL, log-sum-exp family."""

MODULES = ("core",)


def test_bench(case, run_case):
    run_case(case)
