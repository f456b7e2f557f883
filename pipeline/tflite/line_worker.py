"""A long-lived child process spoken to in JSON lines: one request line in, one reply out.

Starting a child that imports a runtime (LiteRT for the probe, MediaPipe in its own venv)
costs seconds; a run asks it dozens of small things. The child is started on the first
request, restarted when it died, and killed past a request's deadline. It answers
`{"ready": true}` once its imports are done, then one JSON line per request.
"""
import json
import os
import select
import subprocess
import time


class DidNotStart(RuntimeError):
    """The child closed its output or stayed silent before saying it was ready."""

    def __init__(self, message: str, timed_out: bool):
        super().__init__(message)
        self.timed_out = timed_out


class LineWorker:
    """The parent side. Subclasses say how to start the child (`launch`)."""

    def __init__(self, start_timeout_s: float = 60.0):
        self.start_timeout_s = start_timeout_s
        self.process = None
        self.starts = 0
        self.last_exit = None  # The exit status of the last child reaped.
        self._buffer = b""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def launch(self) -> subprocess.Popen:
        """Starts the child with stdin and stdout as pipes."""
        raise NotImplementedError

    def _start(self) -> None:
        self.process = self.launch()
        self.starts += 1
        self._buffer = b""
        reply = self._read_reply(time.monotonic() + self.start_timeout_s)
        if reply != {"ready": True}:
            # Output closed: the child is exiting; give it time to be reaped with its own
            # status (killing it at once would report our SIGKILL instead of its error).
            code = self._stop(grace_s=0.0 if reply == "timeout" else 5.0)
            why = (f"did not start within {self.start_timeout_s:g} s" if reply == "timeout"
                   else f"did not start (reply {reply}, exit {code})")
            raise DidNotStart(f"{type(self).__name__} {why}", reply == "timeout")

    def _read_reply(self, deadline: float):
        """The next JSON line; None at end of file (the child died), "timeout" past deadline."""
        fd = self.process.stdout.fileno()
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                return "timeout"
            chunk = os.read(fd, 65536)
            if not chunk:
                return None
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return json.loads(line)

    def _stop(self, grace_s: float = 0.0) -> int | None:
        """Ends the child and returns its exit code: end of input lets it leave on its own
        within `grace_s`; otherwise (a timeout, or no grace) it is killed, by its handle."""
        if self.process is None:
            return None
        process, self.process = self.process, None
        for stream in (process.stdin, process.stdout):
            try:
                stream.close()
            except OSError:  # A dead child's stdin pipe can refuse the flush.
                pass
        try:
            self.last_exit = process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            process.kill()
            self.last_exit = process.wait()
        return self.last_exit

    def close(self) -> None:
        self._stop(grace_s=2.0)

    def ask(self, request: dict, timeout_s: float):
        """The child's reply to `request`; "timeout" (the child is then killed) or None (it
        died; it is reaped with its own status, in `last_exit`)."""
        if self.process is None or self.process.poll() is not None:
            self._stop()
            self._start()
        try:
            try:
                self.process.stdin.write(json.dumps(request).encode() + b"\n")
                self.process.stdin.flush()
            except BrokenPipeError:
                pass  # The child died; reading its reply below reports how.
            reply = self._read_reply(time.monotonic() + timeout_s)
        except BaseException:
            # Interrupted mid-request: the reply still due would answer the next request.
            self._stop()
            raise
        if reply == "timeout":
            self._stop()
        elif reply is None:  # End of output: the child is dying; let it exit on its own.
            self._stop(grace_s=5.0)
        return reply


def serve(answer, ready=None) -> None:
    """The child side: `ready()` (imports), then `answer(request) -> reply` per stdin line.
    The protocol gets a private copy of stdout; fd 1 then points at stderr, so anything
    native code prints cannot corrupt the JSON lines."""
    import sys
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    if ready is not None:
        ready()
    protocol.write(json.dumps({"ready": True}) + "\n")
    for line in sys.stdin:
        protocol.write(json.dumps(answer(json.loads(line))) + "\n")
