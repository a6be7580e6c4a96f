"""Benchmarks of fednet itself: workloads, harness, many-client swarm."""
