"""On-device latency on Android phones with TFLite's benchmark_model."""

from android_bench.results import render_markdown  # noqa: F401
