"""Benchmark suite: `python -m fastloss bench` and the pytest-benchmark suite."""
