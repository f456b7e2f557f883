"""Starts N `python -m pipeline quantize` workers on this machine for a try-out of
`--strategy=multi_worker`: each gets the standard TF_CONFIG (the cluster on 127.0.0.1, its
own task index); worker 0 is the chief and writes the output folder.

    python -m pipeline.cli.local_workers --workers=2 -- --model=mnist_cnn --out=artifacts/mw

If a worker exits with an error, or is killed, the others are stopped within `--timeout_s`
and one line names the worker; a rerun resumes from the last stage the chief finished.
"""
import argparse
import json
import os
import socket
import subprocess
import sys
import time


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def tf_config(ports: list[int], index: int) -> str:
    return json.dumps({"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
                       "task": {"type": "worker", "index": index}})


def start(workers: int, args: list[str]) -> list[subprocess.Popen]:
    ports = free_ports(workers)
    command = [sys.executable, "-m", "pipeline", "quantize", "--strategy=multi_worker", *args]
    return [subprocess.Popen(command, env={**os.environ, "TF_CONFIG": tf_config(ports, i)},
                             stdout=None if i == 0 else subprocess.DEVNULL)
            for i in range(workers)]


def supervise(procs: list[subprocess.Popen], timeout_s: float) -> int:
    """Waits for every worker; the first that fails stops the rest. Returns the exit code."""
    while True:
        codes = [p.poll() for p in procs]
        failed = [i for i, c in enumerate(codes) if c not in (None, 0)]
        if failed:
            index = failed[0]
            for p in procs:
                if p.poll() is None:
                    p.terminate()
            deadline = time.time() + timeout_s
            for p in procs:
                try:
                    p.wait(max(0.1, deadline - time.time()))
                except subprocess.TimeoutExpired:
                    p.kill()
            print(f"error: worker {index} exited with code {codes[index]}; every worker was "
                  f"stopped; rerun the same command to resume from the last finished stage",
                  file=sys.stderr)
            return 2
        if all(c == 0 for c in codes):
            return 0
        time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m pipeline.cli.local_workers",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--timeout_s", type=float, default=30.0,
                        help="How long the other workers get to stop after one failed.")
    parser.add_argument("args", nargs=argparse.REMAINDER,
                        help="-- then the flags of `python -m pipeline quantize`")
    options = parser.parse_args()
    if options.workers < 1:
        parser.error("--workers must be at least 1")
    args = options.args[1:] if options.args[:1] == ["--"] else options.args
    procs = start(options.workers, args)
    try:
        sys.exit(supervise(procs, options.timeout_s))
    except KeyboardInterrupt:
        for p in procs:
            p.terminate()
        sys.exit(130)


if __name__ == "__main__":
    main()
