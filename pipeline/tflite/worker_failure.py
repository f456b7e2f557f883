"""One line saying why a worker process (a script run in another venv) failed."""
import signal
import subprocess


def failure_line(proc: subprocess.CompletedProcess, who: str, stages: dict, suffix: str = "",
                 stage_who: str | None = None) -> str:
    """A signal, a known stage's exit code (the worker's last stderr line is
    "<stage>: <Error>: <message>"; the stage is said already), or any other status."""
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
    last = lines[-1].strip() if lines else "no message"
    code = proc.returncode
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = "unknown"
        return f"{who} crashed (signal {-code}, {name}){suffix}"
    if code in stages:
        detail = last.split(": ", 1)[1] if ": " in last else last
        return f"{stage_who or who} {stages[code]}: {detail}"
    return f"{who} exited with status {code}{suffix}: {last}"
