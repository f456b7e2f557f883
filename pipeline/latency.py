"""Host latency of a `.tflite` file: batch 1, fixed threads, median and p90 of many invokes."""
import time

import numpy as np

from pipeline import runtime


def measure(model: bytes, sample: np.ndarray, *, num_threads: int = 1, warmup_runs: int = 20,
            min_runs: int = 200, min_seconds: float = 1.0) -> dict:
    """Times `invoke()` on one input until both `min_runs` and `min_seconds` are reached.

    The run count adapts to the model: a 50 µs model gets thousands of samples, a 50 ms one
    at least `min_runs`, so the median is stable in either case.
    """
    interpreter = runtime.make_interpreter(model, num_threads)
    interpreter.allocate_tensors()
    inp = interpreter.get_input_details()[0]
    interpreter.set_tensor(inp["index"], runtime.quantize_input(sample[None], inp))
    for _ in range(warmup_runs):
        interpreter.invoke()
    times = []
    deadline = time.perf_counter() + min_seconds
    while len(times) < min_runs or time.perf_counter() < deadline:
        start = time.perf_counter()
        interpreter.invoke()
        times.append(time.perf_counter() - start)
    ms = np.asarray(times) * 1e3
    return {"median": round(float(np.median(ms)), 5), "p90": round(float(np.percentile(ms, 90)), 5),
            "mean": round(float(ms.mean()), 5), "runs": len(times), "threads": num_threads}


def interleaved(models: dict[str, bytes], sample, *, seconds: float, block: int = 20,
                warmup: int = 20, min_runs: int = 100) -> dict:
    """Batch-1, 1-thread invoke times of several models, measured round-robin.

    Blocks of `block` invokes per model in turn, the order rotating every round, until
    `seconds` have passed: a slow spell of the machine lands on every model, not on one.
    `sample` is one input for all models, or a dict giving each model its own.
    """
    interpreters = {}
    for name, model in models.items():
        interpreter = runtime.make_interpreter(model, num_threads=1)
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
                        "mean": round(float(ms.mean()), 5), "runs": len(samples), "threads": 1,
                        "interleaved": len(models)}
    return result
