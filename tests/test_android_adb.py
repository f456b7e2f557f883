"""android_bench.adb and android_bench.binary against the fake adb: device
discovery, quoting, and every transport error path as one clear line."""

import hashlib
import json
import os
import pathlib
import re
import subprocess
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).parent / "android_fakes"))
import android_harness as harness  # noqa: E402

from android_bench import adb, binary, pins  # noqa: E402
from android_bench.errors import AndroidBenchError  # noqa: E402

REAL_DEVICES_OUTPUT = """\
* daemon not running; starting now at tcp:5037
* daemon started successfully
List of devices attached
R58M12ABCDE            device usb:1-1 product:panther model:Pixel_7 device:panther transport_id:3
emulator-5554          unauthorized transport_id:4
192.168.1.20:5555      offline transport_id:5
0123456789ABCDEF       no permissions (missing udev rules? user is in the plugdev group); see [http://developer.android.com/tools/device.html] usb:1-2 transport_id:6

"""


@pytest.fixture
def fake(tmp_path, monkeypatch):
    return harness.FakeAdb(tmp_path, monkeypatch)


def test_parse_devices_states_and_attributes():
    entries = adb.parse_devices(REAL_DEVICES_OUTPUT)
    assert [(e.serial, e.state) for e in entries] == [
        ("R58M12ABCDE", "device"), ("emulator-5554", "unauthorized"),
        ("192.168.1.20:5555", "offline"),
        ("0123456789ABCDEF", "no permissions")]
    assert entries[0].attributes["model"] == "Pixel_7"
    assert entries[3].attributes["usb"] == "1-2"


def test_parse_devices_empty():
    assert adb.parse_devices("List of devices attached\n\n") == []


@pytest.mark.parametrize("word", [
    "a b;rm -rf x.tflite", "it's $(touch pwned) `id` \"q\" \\ & | > <", "-n"])
def test_quote_argv_keeps_each_word_intact(tmp_path, word):
    command = adb.quote_argv(["printf", "%s\\n", word, "/data/local/tmp/d x"])
    out = subprocess.run(["sh", "-c", command], cwd=tmp_path,
                         capture_output=True, text=True, check=True).stdout
    assert out == f"{word}\n/data/local/tmp/d x\n"
    assert list(tmp_path.iterdir()) == []  # nothing was executed


def test_adb_not_installed(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(AndroidBenchError,
                       match=r"^adb is not installed .*make android-setup"):
        adb.Adb()


def test_devices_props_and_info_through_fake(fake):
    fake.set_devices([harness.device("PIX1"),
                      harness.device("MOTO", props=harness.OLD_PHONE_PROPS)])
    client = adb.Adb()
    assert [(e.serial, e.state) for e in client.devices()] == [
        ("PIX1", "device"), ("MOTO", "device")]
    info = adb.device_info(client.device("MOTO").props())
    assert info == {"model": "Moto G", "manufacturer": "motorola",
                    "soc": "msm8226", "abi": "armeabi-v7a",
                    "android": "7.1.1", "sdk": "25"}
    assert adb.device_info(client.device("PIX1").props())["soc"] == \
        "Google GS201"


def test_push_run_pull_roundtrip_with_awkward_names(fake, tmp_path):
    fake.set_devices([harness.device("PIX1")])
    device = adb.Adb().device("PIX1")
    local = tmp_path / "a b;rm -rf x.tflite"
    local.write_text("payload")
    remote = "/data/local/tmp/w d/a b;rm -rf x.tflite"
    device.check_shell(["mkdir", "-p", "/data/local/tmp/w d"])
    device.push(local, remote)
    result = device.shell(["cat", remote], redirect_to="/data/local/tmp/w d/o")
    assert result.returncode == 0
    device.pull("/data/local/tmp/w d/o", tmp_path / "o")
    assert (tmp_path / "o").read_text() == "payload"
    assert device.shell(["sh", "-c", "exit 3"]).returncode == 3


@pytest.mark.parametrize("state, message", [
    ("unauthorized", r"^device PIX1 is unauthorized: unlock the phone and "
                     r"accept the 'Allow USB debugging\?' prompt"),
    ("offline", r"^device PIX1 is offline: reconnect"),
])
def test_device_state_errors_on_commands(fake, state, message):
    fake.set_devices([harness.device("PIX1", state=state)])
    with pytest.raises(AndroidBenchError, match=message) as info:
        adb.Adb().device("PIX1").props()
    assert "\n" not in info.value.message


def test_disconnected_device(fake, tmp_path):
    fake.set_devices([harness.device("PIX1", disconnect_after=1)])
    device = adb.Adb().device("PIX1")
    device.props()
    with pytest.raises(AndroidBenchError, match=(
            r"^device PIX1 disconnected during the run \(device 'PIX1' not "
            r"found\); reconnect it")):
        device.shell(["true"])
    (tmp_path / "f").write_text("x")
    with pytest.raises(AndroidBenchError, match="PIX1 disconnected"):
        device.push(tmp_path / "f", "/data/local/tmp/f")
    assert adb.Adb().devices() == []


def test_push_and_pull_failures_are_one_line(fake, tmp_path):
    fake.set_devices([harness.device("PIX1")])
    device = adb.Adb().device("PIX1")
    (tmp_path / "f").write_text("x")
    with pytest.raises(AndroidBenchError, match=(
            r"^adb push f to PIX1 failed: .*Permission denied$")):
        device.push(tmp_path / "f", "/system/f")
    with pytest.raises(AndroidBenchError, match=(
            r"^adb pull /data/local/tmp/nope from PIX1 failed: .*No such "
            r"file")):
        device.pull("/data/local/tmp/nope", tmp_path / "g")


def test_every_command_has_a_timeout(fake):
    fake.set_devices([harness.device("PIX1")])
    with pytest.raises(AndroidBenchError, match=(
            r"^`adb shell sleep 3` timed out after 0.5s on PIX1")):
        adb.Adb().device("PIX1").shell(["sleep", "3"], timeout=0.5)


def test_find_binary_explicit_missing_and_prebuilt_missing(tmp_path):
    with pytest.raises(AndroidBenchError, match=(
            r"^benchmark_model binary not found at .*/nope: set "
            r"BENCHMARK_MODEL")):
        binary.find_binary("arm64-v8a", tmp_path / "nope")
    with pytest.raises(AndroidBenchError, match=(
            r"^benchmark_model binary for arm64-v8a is missing "
            r"\(.*android_aarch64_benchmark_model\): run `make android-tools`")):
        binary.find_binary("arm64-v8a", None, bin_dir=tmp_path)
    with pytest.raises(AndroidBenchError, match="no prebuilt .* 'mips'"):
        binary.find_binary("mips", None, bin_dir=tmp_path)
    # LiteRT's releases hold no 32-bit binary: such a phone needs the user's own build.
    with pytest.raises(AndroidBenchError, match="no prebuilt .* 'armeabi-v7a'.*BENCHMARK_MODEL"):
        binary.find_binary("armeabi-v7a", None, bin_dir=tmp_path)


def test_a_prebuilt_is_pushed_only_if_it_matches_its_pinned_sha256(tmp_path):
    """Issue 28: the prebuilt in android_bench/bin must be the reviewed one; a file the
    nightly replaced (or anyone changed) is refused before it reaches a phone."""
    path = _elf(tmp_path / "android_aarch64_benchmark_model", 183)
    good = {"version": "2.2.0", "files": {
        "android_aarch64_benchmark_model": {"sha256": hashlib.sha256(path.read_bytes())
                                            .hexdigest()}}}
    assert binary.find_binary("arm64-v8a", None, bin_dir=tmp_path, pins=good) == path
    path.write_bytes(path.read_bytes() + b"changed")
    with pytest.raises(AndroidBenchError, match=(
            r"has sha256 [0-9a-f]{16}\.\.\., not the pinned [0-9a-f]{16}\.\.\. of "
            r"android_aarch64_benchmark_model \(LiteRT 2.2.0\)")):
        binary.find_binary("arm64-v8a", None, bin_dir=tmp_path, pins=good)
    with pytest.raises(AndroidBenchError, match="no sha256 pinned for android_aarch64_"):
        binary.find_binary("arm64-v8a", None, bin_dir=tmp_path, pins={"files": {}})
    # The committed pins file lists every prebuilt the tool installs, from a versioned
    # release folder (never the moving nightly).
    committed = pins.load()
    assert set(committed["files"]) == set(binary.PREBUILT_FOR_ABI.values())
    assert all(set(f) == {"path", "sha256", "bytes"} for f in committed["files"].values())
    assert re.fullmatch(r"\d+\.\d+\.\d+", committed["version"])
    assert pins.url(committed, "android_aarch64_benchmark_model") == (
        f"https://storage.googleapis.com/litert/binaries/{committed['version']}/"
        f"android_arm64/benchmark_model")
    assert "nightly" not in pins.url(committed, "android_aarch64_benchmark_model")


def _elf(path, machine):
    header = b"\x7fELF\x02\x01\x01" + b"\0" * 9 + b"\x03\x00"
    path.write_bytes(header + machine.to_bytes(2, "little") + b"\0" * 40)
    return path


def test_abi_mismatch_is_caught_before_pushing(tmp_path):
    x86 = _elf(tmp_path / "x86_bm", 62)
    with pytest.raises(AndroidBenchError, match=(
            r"built for another CPU \(ELF machine 62\) than the device's ABI "
            r"arm64-v8a")):
        binary.find_binary("arm64-v8a", x86)
    arm64 = _elf(tmp_path / "arm64_bm", 183)
    assert binary.find_binary("arm64-v8a", arm64) == arm64
    with pytest.raises(AndroidBenchError, match="armeabi-v7a"):
        binary.check_abi(arm64, "armeabi-v7a")
    binary.check_abi(_elf(tmp_path / "arm_bm", 40), "arm64-v8a")


def test_download_prebuilts(tmp_path):
    from android_bench import tools
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "android_aarch64_benchmark_model").write_bytes(b"\x7fELF...")
    good = {"files": {"android_aarch64_benchmark_model": {
        "sha256": hashlib.sha256(b"\x7fELF...").hexdigest()}}}
    urls = {"android_aarch64_benchmark_model":
            f"{mirror.as_uri()}/android_aarch64_benchmark_model"}
    paths = tools.download(urls, tmp_path / "bin", pins=good)
    assert paths == [tmp_path / "bin" / "android_aarch64_benchmark_model"]
    assert paths[0].read_bytes() == b"\x7fELF..."
    assert os.access(paths[0], os.X_OK)
    assert [p.name for p in (tmp_path / "bin").iterdir()] == [paths[0].name]
    # The file changed on the server: the new one is refused and the reviewed one stays.
    (mirror / "android_aarch64_benchmark_model").write_bytes(b"\x7fELF... v2")
    with pytest.raises(AndroidBenchError, match="not the pinned"):
        tools.download(urls, tmp_path / "bin", pins=good)
    assert paths[0].read_bytes() == b"\x7fELF..."
    assert [p.name for p in (tmp_path / "bin").iterdir()] == [paths[0].name]


def test_android_tools_refuses_unpinned_prebuilts_and_pin_records_them(fake, tmp_path):
    mirror = tmp_path / "mirror"
    committed = pins.load()  # The committed state: the release, no sha256 yet.
    for name, entry in committed["files"].items():
        (mirror / entry["path"]).parent.mkdir(parents=True, exist_ok=True)
        (mirror / entry["path"]).write_bytes(name.encode())
    pins_file = tmp_path / "prebuilts.json"
    pins_file.write_text(json.dumps(committed))
    args = [f"--dest={tmp_path / 'bin'}", f"--url={mirror.as_uri()}", f"--pins={pins_file}"]
    refused = fake.run_cli(None, *args, module="android_bench.tools")
    assert refused.returncode == 2
    assert refused.stderr.strip().startswith("error: no sha256 pinned for android_")
    assert not (tmp_path / "bin").exists() or not list((tmp_path / "bin").iterdir())
    pinned = fake.run_cli(None, *args, "--pin", module="android_bench.tools")
    assert pinned.returncode == 0, pinned.stderr
    recorded = json.loads(pins_file.read_text())
    assert recorded["files"]["android_aarch64_benchmark_model"] == {
        "path": "android_arm64/benchmark_model",
        "sha256": hashlib.sha256(b"android_aarch64_benchmark_model").hexdigest(),
        "bytes": len("android_aarch64_benchmark_model")}
    assert recorded["version"] == committed["version"] and recorded["pinned_on"]
    again = fake.run_cli(None, *args, module="android_bench.tools")  # Now verified.
    assert again.returncode == 0, again.stderr


def test_download_without_network_fails_clearly(fake, tmp_path):
    # Port 9 (discard) on localhost refuses the connection like a box
    # without network does.
    pins_file = tmp_path / "prebuilts.json"
    pins_file.write_text(json.dumps({"files": {name: {"sha256": "0" * 64} for name in
                                               binary.PREBUILT_FOR_ABI.values()}}))
    result = fake.run_cli(None, f"--dest={tmp_path / 'bin'}",
                          "--url=http://127.0.0.1:9/nightly", f"--pins={pins_file}",
                          module="android_bench.tools")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(
        "error: could not download http://127.0.0.1:9/nightly/"
        "android_aarch64_benchmark_model: ")
    assert "(no network?)" in lines[0]
    assert list((tmp_path / "bin").iterdir()) == []  # no partial file


def test_make_android_tools_passes_args_so_the_documented_pin_command_pins():
    """`make android-tools ARGS=--pin` dropped its ARGS: the documented way to pin ran a
    plain download, which refuses an unpinned binary."""
    from conftest import REPO
    dry = subprocess.run(["make", "-n", "android-tools", "ARGS=--pin"], cwd=REPO,
                         capture_output=True, text=True, timeout=60)
    assert dry.returncode == 0, dry.stderr
    assert "-m android_bench.tools --pin" in dry.stdout
