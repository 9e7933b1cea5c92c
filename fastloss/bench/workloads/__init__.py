"""Workload definitions, one module per loss family (each defines WORKLOADS)."""
