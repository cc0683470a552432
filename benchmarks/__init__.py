"""Benchmarks: long measurements that record their figures in benchmarks/results/."""
