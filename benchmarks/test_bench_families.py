"""Benchmarks of every other workload module (element-wise, row-wise, segmentation, ...)."""

EXCLUDE_MODULES = ("core",)


def test_bench(case, run_case):
    run_case(case)
