"""Benchmarks: published recipes side by side (`recipes`), validation throughput (`eval_throughput`)."""
