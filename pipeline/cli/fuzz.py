"""Fuzzes the `validate` path with damaged `.tflite` files: clean error or success, nothing else.

Deterministic seeded mutations of valid models (bit flips, truncation, byte splices from the
same or another model, header damage, zero-filled ranges, 32-bit words set to edge values)
each go through `validate_file.validate_file`, the code behind `python -m pipeline validate`,
on a tiny dataset shaped for the original model. Each case is classified:

- validated: the file loaded and was evaluated;
- clean error: a one-line `PipelineError` (pre-check, interpreter refusal, or a crash/timeout
  of the probe child, which is the point of probing there);
- crash: any other exception in this process (this process dying is caught by the caller:
  the test runs the campaign in a subprocess);
- hang: a case that took longer than the time limit (a watchdog also kills this process
  if one never returns).

All cases share one probe child, restarted only after it crashes or times out.

    python -m pipeline.cli.fuzz --cases=2000 [--model=PATH ...] [--seed=0] [--json_out=PATH]
"""
import argparse
import collections
import faulthandler
import glob
import json
import os
import random
import struct
import sys
import tempfile
import time

import numpy as np

from pipeline.cli import validate_file
from pipeline.tflite import inspect_tflite
from pipeline.errors import PipelineError

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_MODELS = (os.path.join(REPO, "tests", "android_fakes", "models", "model_float.tflite"),
                  os.path.join(REPO, "tests", "android_fakes", "models", "model_int8.tflite"))
MUTATIONS = ("bit_flip", "truncate", "splice", "header", "zero_fill", "edge_word")
# 32-bit values that break offsets, counts, indices and tensor dimensions the most.
EDGE_WORDS = (0, 1, 2, 3, 4, 7, 8, 255, 256, 0x7FFF, 0xFFFF, 0x7FFFFFFF, 0x80000000,
              0xFFFFFFFF, 0xFFFFFFFE, 0x10000000)
# Each case does no more interpreter work than the probe child already survived within its
# time limit (2 rows in one batch of 2, one timed invoke at batch 1): a case that still runs
# past the limit is a hang, not a slow but valid mutant (a 32767-wide layer, say).
FAST_LATENCY = {"warmup_runs": 0, "min_runs": 1, "min_seconds": 0.0}
ROWS = 2


def _bit_flip(data: bytearray, rng: random.Random, donors) -> str:
    flips = rng.randint(1, 8)
    for _ in range(flips):
        data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    return f"{flips} bits"


def _truncate(data: bytearray, rng: random.Random, donors) -> str:
    cut = rng.randrange(len(data))
    del data[cut:]
    return f"at {cut}"


def _splice(data: bytearray, rng: random.Random, donors) -> str:
    donor = rng.choice(donors)
    length = rng.randint(1, 256)
    start = rng.randrange(len(donor))
    chunk = donor[start:start + length]
    at = rng.randrange(len(data))
    if rng.random() < 0.3:  # Inserting shifts every later offset.
        data[at:at] = chunk
        return f"insert {len(chunk)} bytes at {at}"
    data[at:at + len(chunk)] = chunk
    return f"overwrite {len(chunk)} bytes at {at}"


def _header(data: bytearray, rng: random.Random, donors) -> str:
    """Damage the identifier, the root offset, the root's vtable offset or a vtable entry."""
    (root,) = struct.unpack_from("<I", data, 0)
    target = rng.choice(("identifier", "root", "vtable_offset", "vtable_entry"))
    if target == "identifier":
        data[4 + rng.randrange(4)] = rng.randrange(256)
    elif target == "root":
        value = rng.choice((rng.randrange(len(data) * 2), root + rng.randint(-8, 8),
                            rng.choice(EDGE_WORDS)))
        struct.pack_into("<I", data, 0, value % 2**32)
    else:
        (delta,) = struct.unpack_from("<i", data, root)
        vtable = root - delta
        if target == "vtable_offset":
            value = rng.choice((delta + rng.randint(-16, 16), rng.randint(-2**31, 2**31 - 1)))
            struct.pack_into("<i", data, root, value)
        else:
            (vtable_size,) = struct.unpack_from("<H", data, vtable)
            entry = vtable + 2 * rng.randrange(max(1, vtable_size // 2))
            struct.pack_into("<H", data, entry, rng.choice((0, 4, 0xFFFF, rng.randrange(2**16))))
    return target


def _zero_fill(data: bytearray, rng: random.Random, donors) -> str:
    at, length = rng.randrange(len(data)), rng.randint(1, 512)
    data[at:at + length] = bytes(len(data[at:at + length]))
    return f"{length} bytes at {at}"


def _edge_word(data: bytearray, rng: random.Random, donors) -> str:
    at = 4 * rng.randrange(len(data) // 4)
    value = rng.choice(EDGE_WORDS)
    struct.pack_into("<I", data, at, value)
    return f"{value:#x} at {at}"


MUTATORS = dict(zip(MUTATIONS, (_bit_flip, _truncate, _splice, _header, _zero_fill, _edge_word)))


def mutate(model: bytes, seed: str, donors: list[bytes]) -> tuple[str, bytes]:
    """One deterministic mutant of `model`: (description, bytes)."""
    rng = random.Random(seed)
    data = bytearray(model)
    kind = rng.choice(MUTATIONS)
    how = MUTATORS[kind](data, rng, donors)
    return f"{kind} ({how})", bytes(data)


def tiny_arrays(info: dict, rows: int = ROWS, seed: int = 0) -> dict:
    """Random data shaped for a model's first input, labels within its classes."""
    rng = np.random.default_rng(seed)
    shape = [d if d > 0 else 1 for d in info["inputs"][0]["shape"][1:]]
    classes = max(1, info["outputs"][0]["shape"][-1])
    x = rng.random((rows, *shape), dtype=np.float32)
    y = rng.integers(0, classes, rows)
    return {"x_train": x, "y_train": y, "x_test": x, "y_test": y}


def classify_error(message: str) -> str:
    if "not a valid TFLite flatbuffer" in message:
        return "precheck"
    if "interpreter crashed" in message or "interpreter exited" in message:
        return "child_crash"
    if "timed out" in message:
        return "child_timeout"
    return "rejected"


def run_case(path: str, arrays: dict, worker, timeout_s: float) -> tuple[str, str]:
    """(outcome, detail) of one mutant through the validate path."""
    try:
        validate_file.validate_file(path, arrays, data_source="fuzz.npz", batch_size=ROWS,
                                    latency_options=FAST_LATENCY, worker=worker,
                                    probe_timeout_s=timeout_s)
        return "validated", ""
    except PipelineError as e:
        return "clean_error", str(e)
    except Exception as e:  # Precisely what the fuzzer is looking for.
        return "crash", f"{type(e).__name__}: {e}"


def campaign(models: dict[str, bytes], cases: int, *, seed: int = 0, timeout_s: float = 10.0,
             case_limit_s: float = 30.0, keep_dir: str | None = None, log=None) -> dict:
    """Runs `cases` mutants (round robin over `models`) and returns the counts."""
    counts = collections.Counter()
    errors = collections.Counter()
    by_mutation = collections.defaultdict(collections.Counter)
    failures, contained = [], []
    donors = list(models.values())
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="fuzz-") as tmp, \
            inspect_tflite.ProbeWorker() as worker:
        arrays = {}
        for n, (name, model) in enumerate(models.items()):
            path = os.path.join(tmp, f"original{n}.tflite")
            with open(path, "wb") as f:
                f.write(model)
            arrays[name] = tiny_arrays(worker.probe_file(path, source=name))
        names = list(models)
        for i in range(cases):
            name = names[i % len(names)]
            how, mutant = mutate(models[name], f"{seed}:{i}", donors)
            path = os.path.join(tmp, f"case{i}.tflite")
            with open(path, "wb") as f:
                f.write(mutant)
            # A case that never returns (a native hang in this process) ends the run loudly.
            faulthandler.dump_traceback_later(case_limit_s * 4, exit=True)
            case_start = time.monotonic()
            outcome, detail = run_case(path, arrays[name], worker, timeout_s)
            faulthandler.cancel_dump_traceback_later()
            if time.monotonic() - case_start > case_limit_s:
                outcome, detail = "hang", f"took {time.monotonic() - case_start:.1f} s"
            counts[outcome] += 1
            by_mutation[how.split()[0]][outcome] += 1
            kind = classify_error(detail) if outcome == "clean_error" else outcome
            if outcome == "clean_error":
                errors[kind] += 1
            if kind in ("child_crash", "child_timeout"):
                contained.append(f"case {i} ({name}, {how}): {detail.split(': ', 1)[-1]}")
            if outcome in ("crash", "hang"):
                failures.append(f"case {i} ({name}, {how}): {detail}")
            if keep_dir and kind in ("crash", "hang", "child_crash", "child_timeout"):
                    os.makedirs(keep_dir, exist_ok=True)
                    with open(os.path.join(keep_dir, f"{kind}{i}.tflite"), "wb") as f:
                        f.write(mutant)
            os.unlink(path)
            if log and (i + 1) % 250 == 0:
                log(f"  {i + 1}/{cases} cases ...")
        worker_starts = worker.starts
    return {"cases": cases, "validated": counts["validated"], "clean_errors": counts["clean_error"],
            "crashes": counts["crash"], "hangs": counts["hang"], "clean_error_kinds": dict(errors),
            "by_mutation": {k: dict(v) for k, v in sorted(by_mutation.items())},
            "worker_starts": worker_starts, "failures": failures[:20],
            "contained_child_failures": contained[:20],
            "seconds": round(time.monotonic() - start, 1), "models": names}


def summary_line(result: dict) -> str:
    kinds = ", ".join(f"{k} {v}" for k, v in sorted(result["clean_error_kinds"].items()))
    return (f"fuzz: {result['cases']} cases, {result['validated']} validated, "
            f"{result['clean_errors']} clean errors ({kinds}), crashes {result['crashes']}, "
            f"hangs {result['hangs']} in {result['seconds']} s "
            f"({result['worker_starts']} probe child starts)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.cli.fuzz", description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", action="append", default=[],
                        help="valid .tflite to mutate (repeatable); default: the committed test "
                             "models plus artifacts/*/model_*.tflite")
    parser.add_argument("--timeout_s", type=float, default=10.0, help="probe child time limit")
    parser.add_argument("--case_limit_s", type=float, default=30.0, help="hang threshold per case")
    parser.add_argument("--keep_dir", help="save crashing/hanging mutants here")
    parser.add_argument("--json_out", help="write the counts as JSON here")
    args = parser.parse_args(argv)
    paths = args.model or [*DEFAULT_MODELS,
                           *sorted(glob.glob(os.path.join(REPO, "artifacts", "*", "model_*.tflite")))]
    models = {}
    for path in paths:
        with open(path, "rb") as f:
            models[f"{os.path.basename(os.path.dirname(path))}/{os.path.basename(path)}"] = f.read()
    log = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    log(f"fuzzing {args.cases} mutants of {', '.join(models)}")
    result = campaign(models, args.cases, seed=args.seed, timeout_s=args.timeout_s,
                      case_limit_s=args.case_limit_s, keep_dir=args.keep_dir, log=log)
    print(summary_line(result))
    for mutation, outcomes in result["by_mutation"].items():
        print(f"  {mutation}: " + ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())))
    for case in result["contained_child_failures"]:
        print(f"  contained in the probe child: {case}")
    for failure in result["failures"]:
        print(f"  FAILED {failure}")
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(result, f, indent=2)
    return 1 if result["crashes"] or result["hangs"] else 0


if __name__ == "__main__":
    sys.exit(main())
