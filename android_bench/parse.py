"""Parser for the text that TFLite's `benchmark_model` prints.

benchmark_model's output changed over the years (log prefixes, the summary
line, the memory lines, an optional `[start]` column in the op-profiling
tables), and on Android it may arrive through logcat with a tag in front.  The
parser therefore keys on the few lines that carry numbers and ignores the rest.
"""

import re

from android_bench.errors import AndroidBenchError

_NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"

# "INFO: " (tools/logging since ~2.10), "I tflite  : " (logcat), both absent in
# old builds.  Only a known prefix is stripped so that table rows keep shape.
_PREFIX = re.compile(
    r"^(?:(?:INFO|WARNING|WARN|ERROR|VERBOSE|DEBUG):\s|"
    r"(?:.*\s)?[VDIWEF]\s+tflite\s*:\s)")

_TIMINGS_NEW = re.compile(
    rf"Inference timings in us: Init: (?P<init>{_NUM}), "
    rf"First inference: (?P<first>{_NUM}), "
    rf"Warmup \(avg\): (?P<warmup>{_NUM}), "
    rf"Inference \(avg\): (?P<avg>{_NUM})")
# TF <= 2.1; the oldest builds wrote "no stats:" where "Inference:" is now.
_TIMINGS_OLD = re.compile(
    rf"Average inference timings in us: Warmup: (?P<warmup>{_NUM}), "
    rf"Init: (?P<init>{_NUM}), (?:Inference|no stats): (?P<avg>{_NUM})")
_STAT_PAIR = re.compile(rf"(\w+)=({_NUM})")
# "Peak memory footprint" is the 2.4-era wording of the same line.
_MEMORY = re.compile(
    rf"(?:Memory footprint delta from the start of the tool|"
    rf"Peak memory footprint) \(MB\): init=(?P<init>{_NUM}) "
    rf"overall=(?P<overall>{_NUM})")
_PEAK = re.compile(
    rf"Overall peak memory footprint \(MB\) via periodic monitoring: "
    rf"(?P<peak>{_NUM})")
_MODEL_SIZE = re.compile(rf"The input model file size \(MB\): (?P<size>{_NUM})")
_SECTION = re.compile(r"Profiling Info for (?P<name>.+?):\s*$")
_TABLE_TITLE = re.compile(r"^=+ (?P<title>.+?) =+$")
_COLUMN = re.compile(r"\[([^\]]+)\]")


class BenchmarkOutputError(AndroidBenchError):
    """The output has no inference timing line, so nothing can be reported."""


def _number(text):
    value = float(text)
    return int(value) if value.is_integer() and "e" not in text.lower() else value


def strip_prefix(line: str) -> str:
    return _PREFIX.sub("", line.rstrip("\r\n"), count=1)


def parse_stat_line(line: str) -> dict | None:
    """Parses `count=N first=.. curr=.. min=.. max=.. avg=.. std=..`.

    A run whose samples were identical prints `count=N curr=X(all same)`
    (or just `count=1 curr=X`); min, max, avg and first are then all X.
    """
    line = strip_prefix(line).strip()
    if not line.startswith("count="):
        return None
    stat = {key: _number(value) for key, value in _STAT_PAIR.findall(line)}
    if "curr" in stat and "avg" not in stat:
        for key in ("first", "min", "max", "avg"):
            stat[key] = stat["curr"]
        stat["std"] = 0
    return stat


def _split_row(line: str, ncols: int, has_name: bool) -> list[str] | None:
    if "\t" in line:
        cells = [c.strip() for c in line.split("\t")]
        while cells and not cells[0]:
            cells.pop(0)
        return cells if len(cells) == ncols else None
    # Tab-less copies (e.g. pasted from a terminal): node types such as
    # "Fully Connected (NC, F32) GEMM" contain spaces, so anchor on the run of
    # numeric cells between the leading type and the trailing name.
    tokens = line.split()
    numeric = ncols - 1 - int(has_name)
    for start in range(1, len(tokens) - numeric + 1):
        middle = tokens[start:start + numeric]
        rest = tokens[start + numeric:]
        if all(re.fullmatch(_NUM + "%?", t) for t in middle) and (
                bool(rest) == has_name):
            head = [" ".join(tokens[:start])] + middle
            return head + ([" ".join(rest)] if has_name else [])
    return None


def _cell(text: str):
    if re.fullmatch(_NUM + "%?", text):
        return _number(text.rstrip("%"))
    return text


def _parse_tables(lines: list[str]) -> dict:
    """Op-profiling tables, as {section: {table title: [row dicts]}}.

    Columns are named by the table's own header, because versions differ in
    which columns they print (`[start]` comes and goes).
    """
    profile: dict = {}
    section = "Benchmark"
    i = 0
    while i < len(lines):
        line = strip_prefix(lines[i]).strip()
        i += 1
        if match := _SECTION.search(line):
            section = match["name"]
            continue
        title = _TABLE_TITLE.match(line)
        if not title or i >= len(lines):
            continue
        columns = [c.strip().lower() for c in _COLUMN.findall(lines[i])]
        if not columns:
            continue
        i += 1
        has_name = columns[-1] == "name"
        rows = []
        while i < len(lines) and lines[i].strip():
            cells = _split_row(lines[i].rstrip("\r\n"), len(columns), has_name)
            if cells is None:
                break
            rows.append({c: _cell(v) for c, v in zip(columns, cells)})
            i += 1
        profile.setdefault(section, {})[title["title"]] = rows
    return profile


def parse(text: str) -> dict:
    """Turns one benchmark_model run's output into a flat result dict.

    Times are in microseconds, memory in MB.  Fields the output does not carry
    are None.  Raises BenchmarkOutputError when there is no timing summary.
    """
    lines = text.splitlines()
    result = dict.fromkeys((
        "init_us", "first_us", "warmup_avg_us", "avg_us", "min_us", "max_us",
        "std_us", "count", "memory_init_mb", "memory_overall_mb",
        "peak_memory_mb", "model_size_mb"))
    stats = []
    summary_seen = False
    for raw in lines:
        line = strip_prefix(raw)
        if not summary_seen and (stat := parse_stat_line(line)):
            stats.append(stat)
        elif match := _TIMINGS_NEW.search(line):
            summary_seen = True
            result.update(init_us=_number(match["init"]),
                          first_us=_number(match["first"]),
                          warmup_avg_us=_number(match["warmup"]),
                          avg_us=_number(match["avg"]))
        elif match := _TIMINGS_OLD.search(line):
            summary_seen = True
            result.update(init_us=_number(match["init"]),
                          warmup_avg_us=_number(match["warmup"]),
                          avg_us=_number(match["avg"]))
        elif match := _MEMORY.search(line):
            result.update(memory_init_mb=_number(match["init"]),
                          memory_overall_mb=_number(match["overall"]))
        elif match := _PEAK.search(line):
            result["peak_memory_mb"] = _number(match["peak"])
        elif match := _MODEL_SIZE.search(line):
            result["model_size_mb"] = _number(match["size"])
    if not summary_seen:
        tail = [line.strip() for line in lines if line.strip()][-3:]
        raise BenchmarkOutputError(
            "benchmark_model printed no inference timing line"
            + (f"; last output: {' | '.join(tail)}" if tail else
               " (no output at all)"))
    # The last stat line before the summary is the measured run; the one
    # before it (if any) is the warmup.
    if stats:
        run = stats[-1]
        result.update(count=run.get("count"), min_us=run.get("min"),
                      max_us=run.get("max"), std_us=run.get("std"))
        if result["first_us"] is None and len(stats) > 1:
            result["first_us"] = stats[0].get("first")
    profile = _parse_tables(lines)
    if profile:
        result["op_profile"] = profile
    return result
