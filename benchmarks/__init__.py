"""Benchmarks: published recipes side by side (`recipes`), per-layer latency (`layer_latency`)."""
