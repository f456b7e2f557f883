"""Does the last `tflite-runtime` release (2.14) load a .tflite and agree with LiteRT on it?

Many boards never moved past `tflite-runtime` 2.14 (it needs numpy<2, so it cannot share the
main venv). `check()` feeds the same raw input tensors to LiteRT here and to `tflite_runtime`
in a separate venv (through `legacy_worker.py`, a subprocess with a timeout; arrays travel
as .npy files, never pickles), then compares the raw outputs.

Which kernels: both runtimes run the model twice, with their defaults and with builtin
kernels only (XNNPACK off). The verdict compares builtin against builtin: the same kernel
family in both, so any difference is a difference between the runtimes. Defaults against
defaults is reported beside it (`vs_defaults`) but not judged, because the two defaults are
not the same kernels: LiteRT 2.3 runs int8 models on XNNPACK, tflite_runtime 2.14 (measured
on digits_cnn) on its builtin kernels. XNNPACK rounds intermediate requantizations
differently and a 1-LSB change inside the network grows to 2-3 LSB at the logits; LiteRT
with XNNPACK differs from LiteRT without it exactly as much, so a 1-LSB rule there would
flag LiteRT against itself. (Float models: both defaults use XNNPACK and agree to 0.)

Agreement:

- int8/uint8/int16 outputs agree when no element differs by more than 1 LSB (the two
  runtimes may round a requantization differently, never by more);
- float outputs agree when `np.allclose(legacy, litert, rtol=FLOAT_RTOL, atol=FLOAT_ATOL)`.

Inputs: `samples` random rows, uniform over the input's representable float range for a
quantized input (then quantized with the model's own scale and zero point) and over [0, 1)
for a float input, or the first `samples` rows of a float `.npy` of real inputs.

    python -m pipeline.tflite.legacy_runtime --tflite=PATH [--venv=.venv-tflite-runtime] [--samples=64]

exits 0 when the runtimes agree, 1 when they do not, 2 on an error (one line). No TensorFlow.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

from pipeline.bookkeeping import progress
from pipeline.tflite import inspect_tflite, runtime
from pipeline.errors import PipelineError
from pipeline.tflite.worker_failure import failure_line

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Anchored at the repository (where `make` builds it), so the pipeline finds it from any cwd.
DEFAULT_VENV = os.path.join(REPO, ".venv-tflite-runtime")
DEFAULT_SAMPLES = 64
DEFAULT_TIMEOUT_S = 120.0
# Two float runtimes may sum in a different order (XNNPACK vs reference kernels): a few ulp
# per op, ~1e-6 relative after a small network. 1e-4 leaves room for depth, still catches
# a wrong kernel, whose errors are of the order of the values themselves.
FLOAT_RTOL = 1e-4
FLOAT_ATOL = 1e-4
MAX_LSB = 1
WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "legacy_worker.py")
# Exit codes of legacy_worker.py -> what failed there.
WORKER_STAGES = {3: "cannot import tflite_runtime", 4: "cannot load the model",
                 5: "failed while running the model"}


# --------------------------------------------------------------------------- inputs


def make_inputs(input_details: list[dict], samples: int, seed: int = 0,
                real: np.ndarray | None = None) -> list[np.ndarray]:
    """One array per model input, shape (samples, *input shape), in the input's dtype."""
    rng = np.random.default_rng(seed)
    arrays = []
    for i, detail in enumerate(input_details):
        shape = tuple(int(d) for d in detail["shape"])
        dtype = np.dtype(detail["dtype"])
        if real is not None and i == 0:
            x = _fit_real(real, shape, samples)
        elif np.issubdtype(dtype, np.integer):
            scale, zero_point = detail["quantization"]
            if scale == 0:
                raise PipelineError(f"input {detail['name']!r} is {dtype.name} without a scale")
            info = np.iinfo(dtype)
            low, high = (info.min - zero_point) * scale, (info.max - zero_point) * scale
            x = rng.uniform(low, high, (samples, *shape)).astype(np.float32)
        elif np.issubdtype(dtype, np.floating):
            x = rng.uniform(0.0, 1.0, (samples, *shape)).astype(np.float32)
        else:
            raise PipelineError(f"input {detail['name']!r}: {dtype.name} inputs are not supported")
        arrays.append(runtime.quantize_input(x, detail))
    return arrays


def _fit_real(real: np.ndarray, shape: tuple, samples: int) -> np.ndarray:
    """Rows of a real-input .npy -> (samples, *shape); rows may omit the batch axis of 1."""
    if real.ndim < 1 or len(real) == 0:
        raise PipelineError("inputs .npy holds no rows")
    rows = real[:samples].astype(np.float32)
    if rows.shape[1:] == shape[1:] and shape[0] == 1:
        rows = rows[:, None]
    if rows.shape[1:] != shape:
        raise PipelineError(f"inputs .npy rows are {real.shape[1:]}, the model input is {shape}")
    if not np.all(np.isfinite(rows)):
        raise PipelineError("inputs .npy holds NaN or infinite values")
    return rows


# --------------------------------------------------------------------------- the two runs


def litert_interpreter(model: bytes, kernels: str):
    """kernels: "builtin" (XNNPACK off, as tflite_runtime 2.14 runs int8) or "default"."""
    if kernels == "default":
        return runtime.make_interpreter(model, num_threads=1)
    if kernels != "builtin":
        raise PipelineError(f"kernels must be builtin or default, got {kernels!r}")
    return runtime.make_interpreter(model, num_threads=1, default_delegates=False)


def run_litert(model: bytes, inputs: list[np.ndarray], kernels: str = "builtin") -> list[np.ndarray]:
    """Raw outputs, one invoke per sample at the model's own shape, as the worker does."""
    interpreter = litert_interpreter(model, kernels)
    interpreter.allocate_tensors()
    in_details, out_details = interpreter.get_input_details(), interpreter.get_output_details()
    results = [[] for _ in out_details]
    for s in range(len(inputs[0]) if inputs else 0):
        for detail, x in zip(in_details, inputs):
            interpreter.set_tensor(detail["index"], x[s])
        interpreter.invoke()
        for k, detail in enumerate(out_details):
            results[k].append(interpreter.get_tensor(detail["index"]).copy())
    return [np.stack(rows) for rows in results]


def venv_python(venv_dir: str) -> str:
    # Absolute, not resolved: the worker runs with cwd elsewhere, and resolving the symlink
    # would start the base interpreter outside the venv.
    python = os.path.abspath(os.path.join(venv_dir, "bin", "python"))
    if not os.path.exists(python):
        raise PipelineError(f"legacy runtime venv not found: {python} is missing "
                            f"(build it with `make legacy-runtime-venv`)")
    return python


def run_legacy(tflite_path: str, inputs: list[np.ndarray], venv_dir: str = DEFAULT_VENV,
               timeout_s: float = DEFAULT_TIMEOUT_S) -> tuple[dict, dict]:
    """({kernels: raw outputs}, worker meta) of `tflite_runtime` in `venv_dir` on `inputs`."""
    python = venv_python(venv_dir)
    with tempfile.TemporaryDirectory(prefix="legacy-runtime-") as work:
        # A copy of the worker, run from the temp dir: the script's folder goes first on
        # sys.path, and pipeline/ there would let its modules shadow the legacy venv's.
        worker = shutil.copy(WORKER, os.path.join(work, "legacy_worker.py"))
        for i, x in enumerate(inputs):
            np.save(os.path.join(work, f"in_{i}.npy"), x)
        # The main process's PYTHONPATH/PYTHONHOME point at numpy 2 and friends, not the venv's.
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
        try:
            proc = subprocess.run([python, "-s", worker, os.path.abspath(tflite_path), work],
                                  capture_output=True, text=True, timeout=timeout_s, env=env,
                                  cwd=work)
        except subprocess.TimeoutExpired:
            raise PipelineError(f"legacy runtime did not finish within {timeout_s:g} s on "
                                f"{tflite_path}") from None
        if proc.returncode != 0:
            raise PipelineError(_worker_failure(proc, tflite_path, venv_dir))
        with open(os.path.join(work, "meta.json")) as f:
            meta = json.load(f)
        outputs = {kernels: [np.load(os.path.join(work, f"out_{kernels}_{k}.npy"))
                             for k in range(meta["outputs"])]
                   for kernels in meta["kernels"]}
    return outputs, meta


def _worker_failure(proc: subprocess.CompletedProcess, tflite_path: str, venv_dir: str) -> str:
    return failure_line(proc, "legacy runtime", WORKER_STAGES, suffix=f" on {tflite_path}",
                        stage_who=f"legacy runtime ({venv_dir})")


# --------------------------------------------------------------------------- comparison


def compare(reference: list[np.ndarray], legacy: list[np.ndarray]) -> dict:
    """Agreement of raw outputs; integer outputs in LSB, float outputs with FLOAT_RTOL/ATOL."""
    if len(reference) != len(legacy):
        return {"agree": False, "max_abs_diff": float("inf"), "unit": "-",
                "argmax_agreement": None,
                "note": f"{len(reference)} outputs here, {len(legacy)} in the legacy runtime"}
    agree, worst, units, notes = True, 0.0, set(), []
    for k, (a, b) in enumerate(zip(reference, legacy)):
        if a.shape != b.shape or a.dtype != b.dtype:
            agree, worst = False, float("inf")
            notes.append(f"output {k}: {a.dtype}{list(a.shape)} here, {b.dtype}{list(b.shape)} legacy")
            continue
        if np.issubdtype(a.dtype, np.integer):
            units.add("LSB")
            diff = int(np.max(np.abs(a.astype(np.int64) - b.astype(np.int64)), initial=0))
            ok = diff <= MAX_LSB
        else:
            units.add("float")
            a64, b64 = a.astype(np.float64), b.astype(np.float64)
            diff = float(np.max(np.abs(a64 - b64), initial=0.0))
            ok = bool(np.allclose(b64, a64, rtol=FLOAT_RTOL, atol=FLOAT_ATOL))
        agree = agree and ok
        worst = max(worst, diff)
    result = {"agree": agree, "max_abs_diff": worst,
              "unit": units.pop() if len(units) == 1 else ("mixed" if units else "-"),
              "argmax_agreement": _argmax_agreement(reference[0], legacy[0]) if reference else None}
    if result["unit"] == "LSB":
        result["max_abs_diff"] = int(worst) if worst != float("inf") else worst
    if notes:
        result["note"] = "; ".join(notes)
    return result


def _argmax_agreement(a: np.ndarray, b: np.ndarray) -> float | None:
    """Fraction of samples whose top class is the same; None when there are no classes."""
    if a.shape != b.shape or a.ndim < 2 or a.shape[-1] < 2:
        return None
    rows_a, rows_b = a.reshape(len(a), -1, a.shape[-1]), b.reshape(len(b), -1, b.shape[-1])
    same = np.all(np.argmax(rows_a, -1) == np.argmax(rows_b, -1), axis=1)
    return float(np.mean(same))


# --------------------------------------------------------------------------- entry points


def check(tflite_path: str, venv_dir: str = DEFAULT_VENV, samples: int = DEFAULT_SAMPLES,
          seed: int = 0, inputs_npy: str | None = None,
          timeout_s: float = DEFAULT_TIMEOUT_S) -> dict:
    """Runs the comparison; raises PipelineError (one line) when it cannot be run."""
    if samples < 1:
        raise PipelineError(f"samples must be at least 1, got {samples}")
    venv_python(venv_dir)  # before the work: a missing venv is the likeliest error
    # Untrusted file: a child loads it first, so a damaged one is an error line, not a segfault.
    inspect_tflite.probe(tflite_path)
    with open(tflite_path, "rb") as f:
        model = f.read()
    real = None
    if inputs_npy is not None:
        try:
            real = np.load(inputs_npy, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise PipelineError(f"cannot read inputs {inputs_npy}: {str(e).splitlines()[0]}") from None
    input_details = litert_interpreter(model, "builtin").get_input_details()
    x = make_inputs(input_details, samples, seed, real)
    legacy, meta = run_legacy(tflite_path, x, venv_dir, timeout_s)
    verdict = compare(run_litert(model, x, "builtin"), legacy["builtin"])
    defaults = compare(run_litert(model, x, "default"), legacy["default"])
    return {"runtime": f"tflite_runtime {meta['version']}",
            "reference": f"{runtime.backend_name()} {_litert_version()}",
            "kernels": "builtin (XNNPACK off) in both",
            "tflite": tflite_path, "samples": len(x[0]), **verdict,
            "vs_defaults": {k: defaults[k] for k in ("agree", "max_abs_diff", "argmax_agreement")}}


def _litert_version() -> str:
    try:
        from importlib.metadata import version
        return version("ai-edge-litert")
    except Exception:  # the version only labels the report
        return "?"


def _diff_text(diff, unit: str) -> str:
    return f"{diff} LSB" if unit == "LSB" else f"{diff:.3g}"


def _fraction(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def render(result: dict) -> str:
    diff_text = _diff_text(result["max_abs_diff"], result["unit"])
    verdict = "AGREE" if result["agree"] else "DISAGREE"
    rows = [("file", result["tflite"]),
            ("reference", result["reference"]),
            ("legacy", result["runtime"]),
            ("kernels", result["kernels"]),
            ("samples", str(result["samples"])),
            ("max abs diff", diff_text),
            ("tolerance", f"{MAX_LSB} LSB" if result["unit"] == "LSB"
             else f"rtol={FLOAT_RTOL:g}, atol={FLOAT_ATOL:g}"),
            ("argmax agreement", _fraction(result["argmax_agreement"]))]
    if "note" in result:
        rows.append(("note", result["note"]))
    other = result.get("vs_defaults")
    if other:
        # Not part of the verdict; see the module docstring.
        rows.append(("defaults vs defaults", f"max abs diff "
                     f"{_diff_text(other['max_abs_diff'], result['unit'])}, argmax agreement "
                     f"{_fraction(other['argmax_agreement'])} (not judged)"))
    width = max(len(k) for k, _ in rows)
    head = f"{verdict}: {result['runtime']} vs {result['reference']}, max abs diff {diff_text}"
    return "\n".join([head] + [f"  {k:<{width}}  {v}" for k, v in rows])


def _cli() -> None:
    # Flags are defined here, not at import: pipeline/__main__.py imports this module for
    # --check_legacy_runtime and already owns a --tflite flag in the same absl registry.
    from absl import app, flags
    flags.DEFINE_string("tflite", None, "The .tflite file to check.", required=True)
    flags.DEFINE_string("venv", DEFAULT_VENV, "Venv with tflite-runtime 2.14 and numpy<2.")
    flags.DEFINE_integer("samples", DEFAULT_SAMPLES, "Inputs run through both runtimes.")
    flags.DEFINE_integer("seed", 0, "Seed of the random inputs.")
    flags.DEFINE_string("inputs", None, "Optional .npy of real float inputs (rows) instead.")
    flags.DEFINE_float("timeout_s", DEFAULT_TIMEOUT_S, "Time limit of the legacy runtime run.")
    FLAGS = flags.FLAGS

    def main(argv):
        if len(argv) > 1:
            print(f"error: unexpected arguments {argv[1:]}", file=sys.stderr)
            return 2
        try:
            result = check(FLAGS.tflite, FLAGS.venv, FLAGS.samples, FLAGS.seed, FLAGS.inputs,
                           FLAGS.timeout_s)
        except PipelineError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        print(render(result))
        return 0 if result["agree"] else 1

    app.run(main)


def check_report(report: dict, out_dir: str) -> None:
    """Adds each variant's agreement between tflite-runtime 2.14 and LiteRT to the report.

    A variant the old runtime cannot load (an op version newer than 2.14, say) is recorded as
    such: that is the answer the user asked for, not a pipeline failure.
    """
    venv_python(DEFAULT_VENV)  # No venv: one error, up front.
    for variant in report["variants"]:
        with progress.stage(f"legacy_runtime {variant['name']}"):
            try:
                result = check(os.path.join(out_dir, variant["path"]))
            except PipelineError as e:
                result = {"agree": False, "error": str(e)}
        variant["legacy_runtime"] = {k: result.get(k) for k in (
            "runtime", "agree", "max_abs_diff", "unit", "samples", "argmax_agreement", "error")}


if __name__ == "__main__":
    _cli()
