"""Transport to Android devices through the real `adb` client.

Every call is an argv list run without a local shell and with a timeout.  The
device side does go through the device's `sh`, so each remote argument is
quoted with `quote_argv` before it is joined into the command line.
"""

import dataclasses
import os
import re
import shlex
import shutil
import subprocess

from android_bench.errors import AndroidBenchError

SHORT_TIMEOUT_S = 30.0
PUSH_TIMEOUT_S = 300.0

_SETUP_HINT = ("run `make android-setup` (installs the Debian package adb) "
               "or pass --adb=/path/to/adb")
# adb prints these (in several wordings across versions) when the transport,
# not the remote command, failed.
_GONE = re.compile(r"device '[^']*' not found|no devices/emulators found|"
                   r"device not found|error: closed|protocol fault|"
                   r"connection reset")
_PROP_LINE = re.compile(r"^\[(?P<key>[^\]]+)\]: \[(?P<value>.*)\]$")


def quote_argv(argv) -> str:
    """One device-shell command line in which every word stays one word."""
    return " ".join(shlex.quote(str(arg)) for arg in argv)


def unauthorized_message(serial: str) -> str:
    return (f"device {serial} is unauthorized: unlock the phone and accept "
            f"the 'Allow USB debugging?' prompt, then run again")


def offline_message(serial: str) -> str:
    return (f"device {serial} is offline: reconnect the USB cable (or run "
            f"`adb kill-server`) and run again")


def disconnected_message(serial: str, detail: str) -> str:
    return (f"device {serial} disconnected during the run ({detail}); "
            f"reconnect it and run again")


@dataclasses.dataclass(frozen=True)
class DeviceEntry:
    """One line of `adb devices -l`."""
    serial: str
    state: str
    attributes: dict


def parse_devices(text: str) -> list[DeviceEntry]:
    entries = []
    for line in text.splitlines():
        line = line.strip()
        # Banner, blank lines and daemon start-up chatter ("* daemon ...").
        if not line or line.startswith(("List of devices", "*", "adb server")):
            continue
        serial, _, rest = line.replace("\t", " ").partition(" ")
        rest = rest.strip()
        if rest.startswith("no permissions"):
            state = "no permissions"
        else:
            state = rest.split(" ", 1)[0] if rest else "unknown"
        attributes = dict(tok.split(":", 1) for tok in rest.split()
                          if ":" in tok and not tok.startswith(("[", "(")))
        entries.append(DeviceEntry(serial, state, attributes))
    return entries


class Adb:
    """The adb client binary, resolved once."""

    def __init__(self, path: str = "adb"):
        resolved = shutil.which(path)
        if resolved is None:
            raise AndroidBenchError(f"adb is not installed ({path!r} not "
                                    f"found on PATH): {_SETUP_HINT}")
        self.path = resolved

    def run(self, args, *, serial=None, timeout=SHORT_TIMEOUT_S):
        argv = [self.path] + (["-s", serial] if serial else []) + list(args)
        try:
            return subprocess.run(argv, capture_output=True, text=True,
                                  errors="replace", timeout=timeout,
                                  stdin=subprocess.DEVNULL, check=False)
        except subprocess.TimeoutExpired:
            where = f" on {serial}" if serial else ""
            raise AndroidBenchError(
                f"`adb {' '.join(map(str, args))[:80]}` timed out after "
                f"{timeout:g}s{where}; is the device responsive?") from None
        except OSError as exc:
            raise AndroidBenchError(f"cannot run adb at {self.path}: "
                                    f"{exc.strerror}: {_SETUP_HINT}") from None

    def devices(self) -> list[DeviceEntry]:
        result = self.run(["devices", "-l"])
        if result.returncode != 0:
            raise AndroidBenchError(
                "`adb devices -l` failed: "
                + _last_line(result.stderr or result.stdout))
        return parse_devices(result.stdout)

    def device(self, serial: str) -> "Device":
        return Device(self, serial)


class Device:
    """Commands addressed to one device with `-s SERIAL`."""

    def __init__(self, adb: Adb, serial: str):
        self.adb = adb
        self.serial = serial

    def _run(self, args, timeout):
        result = self.adb.run(args, serial=self.serial, timeout=timeout)
        if result.returncode != 0:
            self._raise_if_transport_failed(result)
        return result

    def _raise_if_transport_failed(self, result):
        # Only adb's own messages count; remote output could say anything.
        text = "\n".join(line for line in result.stderr.splitlines()
                         if line.startswith(("error:", "adb:")))
        if "unauthorized" in text:
            raise AndroidBenchError(unauthorized_message(self.serial))
        if "device offline" in text:
            raise AndroidBenchError(offline_message(self.serial))
        if match := _GONE.search(text):
            raise AndroidBenchError(
                disconnected_message(self.serial, match.group(0)))

    def props(self) -> dict:
        """All system properties, from a single `getprop` round trip."""
        result = self._run(["shell", "getprop"], SHORT_TIMEOUT_S)
        if result.returncode != 0:
            raise AndroidBenchError(f"`getprop` failed on {self.serial}: "
                                    + _last_line(result.stderr))
        props = {}
        for line in result.stdout.splitlines():
            if match := _PROP_LINE.match(line.strip()):
                props[match["key"]] = match["value"]
        return props

    def push(self, local, remote: str, timeout=PUSH_TIMEOUT_S):
        # adb's sync protocol takes the remote path verbatim (no shell), so it
        # needs no quoting here.
        result = self._run(["push", os.fspath(local), remote], timeout)
        if result.returncode != 0:
            raise AndroidBenchError(
                f"adb push {os.path.basename(local)} to {self.serial} failed: "
                + _last_line(result.stderr or result.stdout))

    def pull(self, remote: str, local, timeout=PUSH_TIMEOUT_S):
        result = self._run(["pull", remote, os.fspath(local)], timeout)
        if result.returncode != 0:
            raise AndroidBenchError(
                f"adb pull {remote} from {self.serial} failed: "
                + _last_line(result.stderr or result.stdout))

    def shell(self, argv, *, redirect_to=None, timeout=SHORT_TIMEOUT_S):
        """Runs argv on the device; returns the CompletedProcess.

        A non-zero status of the remote command is returned, not raised
        (callers decide what it means); a lost device is raised.
        `redirect_to` sends stdout and stderr, interleaved in order, to a
        remote file.
        """
        command = quote_argv(argv)
        if redirect_to is not None:
            command += f" > {shlex.quote(redirect_to)} 2>&1"
        return self._run(["shell", command], timeout)

    def check_shell(self, argv, timeout=SHORT_TIMEOUT_S):
        result = self.shell(argv, timeout=timeout)
        if result.returncode != 0:
            raise AndroidBenchError(
                f"`{quote_argv(argv)[:80]}` failed on {self.serial} (exit "
                f"{result.returncode}): "
                + _last_line(result.stderr or result.stdout))
        return result


def _last_line(text: str) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def device_info(props: dict) -> dict:
    """The identity fields the report shows, from `getprop` output."""
    # ro.soc.* exists from Android 12; older phones only name the board.
    soc = " ".join(filter(None, (props.get("ro.soc.manufacturer"),
                                 props.get("ro.soc.model"))))
    return {
        "model": props.get("ro.product.model") or "unknown",
        "manufacturer": props.get("ro.product.manufacturer") or "unknown",
        "soc": soc or props.get("ro.board.platform")
        or props.get("ro.hardware") or "unknown",
        "abi": props.get("ro.product.cpu.abi") or "unknown",
        "android": props.get("ro.build.version.release") or "unknown",
        "sdk": props.get("ro.build.version.sdk") or "unknown",
    }
