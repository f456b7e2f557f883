"""Runs a .tflite model under `tflite_runtime` inside the legacy venv; driven by legacy_runtime.py.

This file runs under a different Python environment (tflite-runtime 2.14 + numpy<2 and nothing
else), so it imports only the standard library, numpy and `tflite_runtime.interpreter`, and
never the `pipeline` package. Strict on purpose: there is no fallback to another runtime, or
the check would silently test the wrong interpreter.

    python legacy_worker.py MODEL.tflite WORKDIR

WORKDIR holds in_<i>.npy (one array per model input, shape (samples, *input shape), already
in the input's dtype). The model runs twice: with the runtime's defaults (what a board does)
and with its builtin kernels only (XNNPACK off, matched by the parent's LiteRT run). The
worker writes out_<kernels>_<k>.npy (raw outputs, same layout; kernels = default, builtin)
and meta.json.
Failures print one line `<stage>: <message>` on stderr and exit with a stage code, so the
parent can say which step failed without reading a traceback.
"""
import json
import os
import sys

EXIT_IMPORT, EXIT_LOAD, EXIT_INVOKE = 3, 4, 5


def _fail(code: int, stage: str, error: BaseException) -> None:
    lines = str(error).strip().splitlines() or [type(error).__name__]
    # The interpreter's message for an unknown op is the useful line; keep the first one.
    print(f"{stage}: {type(error).__name__}: {lines[0]}", file=sys.stderr)
    sys.exit(code)


def _run(Interpreter, model_path: str, workdir: str, options: dict) -> list:
    import numpy as np
    try:
        # One thread: the same setting the parent uses for LiteRT, so the two runs differ
        # only in the runtime, not in how the work is split.
        interpreter = Interpreter(model_path=model_path, num_threads=1, **options)
        interpreter.allocate_tensors()
    except Exception as e:  # ValueError for unknown ops/versions, RuntimeError from Prepare
        _fail(EXIT_LOAD, "load", e)

    inputs = interpreter.get_input_details()
    outputs = interpreter.get_output_details()
    data = [np.load(os.path.join(workdir, f"in_{i}.npy")) for i in range(len(inputs))]
    results = [[] for _ in outputs]
    try:
        # One sample per invoke, at the model's own input shape: no resize, so a runtime that
        # handles dynamic shapes differently cannot make the two runs diverge.
        for s in range(len(data[0]) if data else 0):
            for detail, x in zip(inputs, data):
                interpreter.set_tensor(detail["index"], x[s])
            interpreter.invoke()
            for k, detail in enumerate(outputs):
                results[k].append(interpreter.get_tensor(detail["index"]).copy())
    except Exception as e:
        _fail(EXIT_INVOKE, "invoke", e)
    return [np.stack(rows) for rows in results]


def main(model_path: str, workdir: str) -> None:
    try:
        import numpy as np
        import tflite_runtime
        from tflite_runtime.interpreter import Interpreter, OpResolverType
    except ImportError as e:
        _fail(EXIT_IMPORT, "import", e)

    configs = {"default": {},
               "builtin": {"experimental_op_resolver_type":
                           OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES}}
    for kernels, options in configs.items():
        outputs = _run(Interpreter, model_path, workdir, options)
        for k, rows in enumerate(outputs):
            np.save(os.path.join(workdir, f"out_{kernels}_{k}.npy"), rows)
    meta = {"version": getattr(tflite_runtime, "__version__", "unknown"),
            "numpy": np.__version__,
            "outputs": len(outputs), "kernels": list(configs)}
    with open(os.path.join(workdir, "meta.json"), "w") as f:
        json.dump(meta, f)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print("usage: legacy_worker.py MODEL.tflite WORKDIR", file=sys.stderr)
        sys.exit(2)
    main(sys.argv[1], sys.argv[2])
