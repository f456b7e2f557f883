"""Picking the local benchmark_model binary for a device's ABI."""

import pathlib
import struct

from android_bench.errors import AndroidBenchError

DEFAULT_BIN_DIR = pathlib.Path(__file__).resolve().parent / "bin"
# The local file name of the pinned prebuilt per Android ABI (ro.product.cpu.abi); LiteRT's
# releases hold arm64 only (prebuilts.json).
PREBUILT_FOR_ABI = {
    "arm64-v8a": "android_aarch64_benchmark_model",
}
# ELF e_machine values, to catch a binary built for another ABI before it is
# pushed and fails on the device with a cryptic "not executable".
_ELF_MACHINE_FOR_ABI = {
    "arm64-v8a": 183, "armeabi-v7a": 40, "armeabi": 40,
    "x86_64": 62, "x86": 3,
}


def find_binary(abi: str, explicit=None, bin_dir=DEFAULT_BIN_DIR, pins=None):
    """The local benchmark_model to push to a device with this ABI. A prebuilt must match
    its sha256 pinned in prebuilts.json (`pins`: that file's dict, loaded when None); an
    explicit BENCHMARK_MODEL is the user's own build and is pushed as given."""
    if explicit:
        path = pathlib.Path(explicit)
        if not path.is_file():
            raise AndroidBenchError(
                f"benchmark_model binary not found at {path}: set "
                f"BENCHMARK_MODEL to an existing file or run "
                f"`make android-tools`")
        check_abi(path, abi)
        return path
    name = PREBUILT_FOR_ABI.get(abi)
    if name is None:
        raise AndroidBenchError(
            f"no prebuilt benchmark_model for ABI {abi!r}: build one for it "
            f"and pass BENCHMARK_MODEL=path")
    path = pathlib.Path(bin_dir) / name
    if not path.is_file():
        raise AndroidBenchError(
            f"benchmark_model binary for {abi} is missing ({path}): run "
            f"`make android-tools` or set BENCHMARK_MODEL=path")
    from android_bench import pins as pins_lib
    pins_lib.verify(path, name, pins_lib.load() if pins is None else pins)  # Before pushing.
    check_abi(path, abi)
    return path


def elf_machine(path) -> int | None:
    """e_machine of an ELF file, None if it is not ELF (e.g. a script)."""
    with open(path, "rb") as f:
        header = f.read(20)
    if len(header) < 20 or header[:4] != b"\x7fELF":
        return None
    endian = "<" if header[5] == 1 else ">"
    return struct.unpack(endian + "H", header[18:20])[0]


def check_abi(path, abi: str):
    machine = elf_machine(path)
    wanted = _ELF_MACHINE_FOR_ABI.get(abi)
    # Scripts (the test stand-in) and unknown ABIs are left to the device.
    if machine is None or wanted is None or machine == wanted:
        return
    if {machine, wanted} <= {40, 183} and abi.startswith("arm64"):
        return  # 32-bit ARM binaries run on most arm64 phones.
    raise AndroidBenchError(
        f"{path} is built for another CPU (ELF machine {machine}) than the "
        f"device's ABI {abi}: use the matching benchmark_model")
