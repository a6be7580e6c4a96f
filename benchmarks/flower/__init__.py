"""Flower side of the benchmarks: the same workloads run on Flower 1.42."""
