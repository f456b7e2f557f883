"""Host latency of `.tflite` files: batch 1, median and p90 of many invokes, several files
interleaved so that a slow spell of the machine lands on all of them alike."""
import time

import numpy as np

from pipeline.tflite import runtime


def measure(model: bytes, sample: np.ndarray, *, num_threads: int = 1, warmup_runs: int = 20,
            min_runs: int = 200, min_seconds: float = 1.0) -> dict:
    """Times `invoke()` on one input until both `min_runs` and `min_seconds` are reached.

    The run count adapts to the model: a 50 µs model gets thousands of samples, a 50 ms one
    at least `min_runs`, so the median is stable in either case.
    """
    return interleaved({"model": model}, sample, seconds=min_seconds, warmup=warmup_runs,
                       min_runs=min_runs, num_threads=num_threads)["model"]


def interleaved(models: dict[str, bytes], sample, *, seconds: float, block: int = 20,
                warmup: int = 20, min_runs: int = 100, num_threads: int = 1) -> dict:
    """Batch-1 invoke times of several models, measured round-robin.

    Blocks of `block` invokes per model in turn, the order rotating every round, until
    `seconds` have passed and every model has `min_runs`. `sample` is one input for all
    models, or a dict giving each model its own.
    """
    interpreters = {}
    for name, model in models.items():
        interpreter = runtime.make_interpreter(model, num_threads=num_threads)
        interpreter.allocate_tensors()
        inp = interpreter.get_input_details()[0]
        x = sample[name] if isinstance(sample, dict) else sample
        interpreter.set_tensor(inp["index"], runtime.quantize_input(x[None], inp))
        for _ in range(warmup):
            interpreter.invoke()
        interpreters[name] = interpreter
    times = {name: [] for name in models}
    names = list(models)
    deadline, round_ = time.perf_counter() + seconds, 0
    while time.perf_counter() < deadline or min(map(len, times.values())) < min_runs:
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            interpreter, samples = interpreters[name], times[name]
            for _ in range(block):
                start = time.perf_counter()
                interpreter.invoke()
                samples.append(time.perf_counter() - start)
        round_ += 1
    result = {}
    for name, samples in times.items():
        ms = np.asarray(samples) * 1e3
        result[name] = {"median": round(float(np.median(ms)), 5),
                        "p90": round(float(np.percentile(ms, 90)), 5),
                        "mean": round(float(ms.mean()), 5), "runs": len(samples),
                        "threads": num_threads, "interleaved": len(models)}
    return result
