"""android_bench.parse against benchmark_model output in the formats in the
wild.  The samples keep the tool's exact line formats (log prefixes, tab
separated and padded profile tables); numbers and op names are made up."""

import pytest

from android_bench import parse

# TF >= 2.10 prints every log line through TFLITE_LOG with an "INFO: " prefix
# and reports peak memory by periodic monitoring.
NEW_FORMAT = """\
INFO: STARTING!
INFO: Log parameter values verbosely: [0]
INFO: Num threads: [4]
INFO: Graph: [/data/local/tmp/tflite_deploy_pipeline/model_int8.tflite]
INFO: Report the peak memory footprint: [1]
INFO: #threads used for CPU inference: [4]
INFO: Loaded model /data/local/tmp/tflite_deploy_pipeline/model_int8.tflite
INFO: Created TensorFlow Lite XNNPACK delegate for CPU.
VERBOSE: Replacing 9 out of 9 node(s) with delegate (TfLiteXNNPackDelegate) node, yielding 1 partitions for the whole graph.
INFO: The input model file size (MB): 0.104512
INFO: Initialized session in 4.113ms.
INFO: Running benchmark for at least 1 iterations and at least 0.5 seconds but terminate if exceeding 150 seconds.
INFO: count=3114 first=412 curr=151 min=146 max=412 avg=159.2 std=14

INFO: Running benchmark for at least 50 iterations and at least 1 seconds but terminate if exceeding 150 seconds.
INFO: count=6398 first=157 curr=152 min=145 max=390 avg=155.7 std=9

INFO: Inference timings in us: Init: 4113, First inference: 412, Warmup (avg): 159.2, Inference (avg): 155.7
INFO: Note: as the benchmark tool itself affects memory footprint, the following is only APPROXIMATE to the actual memory footprint of the model at runtime. Take the information at your discretion.
INFO: Memory footprint delta from the start of the tool (MB): init=2.83984 overall=3.26562
INFO: Overall peak memory footprint (MB) via periodic monitoring: 7.66797
INFO: Memory status at the end of exeution:
INFO: - VmRSS              : 7 MB
INFO: + RssAnnon           : 2 MB
INFO: + RssFile + RssShmem : 5 MB
"""

# TF 2.1 era: no prefix, the "Average inference timings" summary, op tables
# with the [start] column.
OLD_FORMAT = """\
STARTING!
Min num runs: [50]
Num threads: [1]
Graph: [/data/local/tmp/mobilenet_quant_v1_224.tflite]
Enable op profiling: [1]
Loaded model /data/local/tmp/mobilenet_quant_v1_224.tflite
resolved reporter
INFO: Initialized TensorFlow Lite runtime.
Initialized session in 38.467ms
Running benchmark for at least 1 iterations and at least 0.5 seconds
count=6 first=91810 curr=83235 min=83004 max=91810 avg=85024.5 std=3117

Running benchmark for at least 50 iterations and at least 1 seconds
count=50 first=79449 curr=81350 min=77385 max=88213 avg=79732 std=1929

Average inference timings in us: Warmup: 83235, Init: 38467, Inference: 79760.9
============================== Run Order ==============================
\t             [node type]\t          [start]\t  [first]\t [avg ms]\t     [%]\t  [cdf%]\t  [mem KB]\t[times called]\t[Name]
\t                 CONV_2D\t            0.000\t    4.269\t    4.199\t 11.108%\t 11.108%\t     0.000\t        1\t[net/conv0/Relu6]
\t       DEPTHWISE_CONV_2D\t            4.203\t    2.011\t    1.987\t  5.256%\t 16.364%\t     0.000\t        1\t[net/dw1/Relu6]
\t                 SOFTMAX\t            6.192\t    0.031\t    0.029\t  0.077%\t 16.441%\t     0.000\t        1\t[net/Predictions]

============================== Top by Computation Time ==============================
\t             [node type]\t          [start]\t  [first]\t [avg ms]\t     [%]\t  [cdf%]\t  [mem KB]\t[times called]\t[Name]
\t                 CONV_2D\t            0.000\t    4.269\t    4.199\t 11.108%\t 11.108%\t     0.000\t        1\t[net/conv0/Relu6]

Number of nodes executed: 3
============================== Summary by node type ==============================
\t             [Node type]\t  [count]\t  [avg ms]\t    [avg %]\t    [cdf %]\t  [mem KB]\t[times called]
\t                 CONV_2D\t        1\t     4.199\t    67.562%\t    67.562%\t     0.000\t        1
\t       DEPTHWISE_CONV_2D\t        1\t     1.987\t    31.971%\t    99.533%\t     0.000\t        1

Timings (microseconds): count=50 first=79449 curr=81350 min=77385 max=88213 avg=79732 std=1929
Memory (bytes): count=0
3 nodes observed
"""

# TF 2.4-2.9: no prefix, the new summary line, "Peak memory footprint", op
# tables without [start], an XNNPACK node type containing spaces.
MID_FORMAT = """\
STARTING!
The input model file size (MB): 16.9008
Initialized session in 17.187ms.
Running benchmark for at least 1 iterations and at least 0.5 seconds but terminate if exceeding 150 seconds.
count=1 curr=3512391

Running benchmark for at least 50 iterations and at least 1 seconds but terminate if exceeding 150 seconds.
count=50 first=2990275 curr=2913402 min=2727568 max=3189954 avg=2.95034e+06 std=109798

Inference timings in us: Init: 17187, First inference: 3512391, Warmup (avg): 3.51239e+06, Inference (avg): 2.95034e+06
Peak memory footprint (MB): init=4.21094 overall=46.0859
Profiling Info for Benchmark Initialization:
============================== Run Order ==============================
\t             [node type]\t  [first]\t [avg ms]\t     [%]\t  [cdf%]\t  [mem KB]\t[times called]\t[Name]
\t         AllocateTensors\t    1.356\t    1.356\t100.000%\t100.000%\t     0.000\t        1\tAllocateTensors/0

Operator-wise Profiling Info for Regular Benchmark Runs:
============================== Run Order ==============================
\t             [node type]\t  [first]\t [avg ms]\t     [%]\t  [cdf%]\t  [mem KB]\t[times called]\t[Name]
\tFully Connected (NC, QD8, F32, QC8W) GEMM\t    0.081\t    0.079\t 88.000%\t 88.000%\t     0.000\t        1\tDelegate/Fully Connected (NC, QD8, F32, QC8W) GEMM:0
\t                 SOFTMAX\t    0.011\t    0.011\t 12.000%\t100.000%\t     0.000\t        1\t[dense_1/Softmax]:3
"""

# benchmark_model_plus_flex / the APK: the same lines through logcat.
LOGCAT_FORMAT = """\
11-23 10:01:02.345  4242  4242 I tflite  : Initialized session in 92.318ms.
11-23 10:01:02.346  4242  4242 I tflite  : count=4 first=187533 curr=211669 min=187533 max=240012 avg=211669 std=18000
11-23 10:01:05.001  4242  4242 I tflite  : count=25 curr=140990(all same)
11-23 10:01:05.002  4242  4242 I tflite  : Inference timings in us: Init: 92318, First inference: 187533, Warmup (avg): 211669, Inference (avg): 140990
11-23 10:01:05.003  4242  4242 I tflite  : Memory footprint delta from the start of the tool (MB): init=54.2852 overall=73.4102
"""


def test_new_format_with_info_prefix():
    r = parse.parse(NEW_FORMAT)
    assert (r["init_us"], r["first_us"], r["warmup_avg_us"], r["avg_us"]) == (
        4113, 412, 159.2, 155.7)
    assert (r["count"], r["min_us"], r["max_us"], r["std_us"]) == (
        6398, 145, 390, 9)
    assert (r["memory_init_mb"], r["memory_overall_mb"]) == (2.83984, 3.26562)
    assert r["peak_memory_mb"] == 7.66797
    assert r["model_size_mb"] == 0.104512
    assert "op_profile" not in r


def test_old_format_average_line_and_start_column():
    r = parse.parse(OLD_FORMAT)
    assert (r["warmup_avg_us"], r["init_us"], r["avg_us"]) == (
        83235, 38467, 79760.9)
    # Stats come from the measured run, not the warmup nor the profiler's
    # "Timings (microseconds): count=..." line.
    assert (r["count"], r["min_us"], r["max_us"], r["std_us"]) == (
        50, 77385, 88213, 1929)
    assert r["first_us"] == 91810  # the old summary lacks it; warmup has it
    assert r["peak_memory_mb"] is None and r["memory_overall_mb"] is None
    tables = r["op_profile"]["Benchmark"]
    assert [row["node type"] for row in tables["Run Order"]] == [
        "CONV_2D", "DEPTHWISE_CONV_2D", "SOFTMAX"]
    first = tables["Run Order"][1]
    assert (first["start"], first["avg ms"], first["%"], first["name"]) == (
        4.203, 1.987, 5.256, "[net/dw1/Relu6]")
    summary = tables["Summary by node type"]
    assert summary[0] == {"node type": "CONV_2D", "count": 1, "avg ms": 4.199,
                          "avg %": 67.562, "cdf %": 67.562, "mem kb": 0,
                          "times called": 1}


def test_mid_format_exponents_sections_and_spaced_node_types():
    r = parse.parse(MID_FORMAT)
    assert r["avg_us"] == pytest.approx(2.95034e6)
    assert r["warmup_avg_us"] == pytest.approx(3.51239e6)
    assert (r["memory_init_mb"], r["memory_overall_mb"]) == (4.21094, 46.0859)
    assert r["model_size_mb"] == 16.9008
    init = r["op_profile"]["Benchmark Initialization"]["Run Order"]
    assert init == [{"node type": "AllocateTensors", "first": 1.356,
                     "avg ms": 1.356, "%": 100, "cdf%": 100, "mem kb": 0,
                     "times called": 1, "name": "AllocateTensors/0"}]
    runs = r["op_profile"]["Regular Benchmark Runs"]["Run Order"]
    assert "start" not in runs[0]
    assert runs[0]["node type"] == "Fully Connected (NC, QD8, F32, QC8W) GEMM"
    assert runs[0]["name"] == "Delegate/Fully Connected (NC, QD8, F32, QC8W) GEMM:0"
    assert runs[1]["avg ms"] == 0.011


@pytest.mark.parametrize("sample", [OLD_FORMAT, MID_FORMAT])
def test_tables_copied_without_tabs_parse_the_same(sample):
    # Terminals and web pages turn the tabs into spaces.
    spaced = sample.replace("\t", "    ")
    assert "\t" not in spaced
    assert parse.parse(spaced) == parse.parse(sample)


def test_logcat_prefix_and_all_same_stat_line():
    r = parse.parse(LOGCAT_FORMAT)
    assert r["avg_us"] == 140990
    assert (r["count"], r["min_us"], r["max_us"], r["std_us"]) == (
        25, 140990, 140990, 0)
    assert r["memory_overall_mb"] == 73.4102


def test_very_old_no_stats_summary():
    text = ("Initialized session in 4.452ms\ncount=1 curr=146161\n\n"
            "count=50 first=137789 curr=137254 min=137079 max=143416 "
            "avg=137722 std=896\n\nAverage inference timings in us: "
            "Warmup: 146161, Init: 4452, no stats: 137722\n")
    r = parse.parse(text)
    assert (r["avg_us"], r["init_us"], r["min_us"]) == (137722, 4452, 137079)


@pytest.mark.parametrize("line, expected", [
    ("count=50 first=79449 curr=81350 min=77385 max=88213 avg=79732 std=1929",
     {"count": 50, "first": 79449, "curr": 81350, "min": 77385, "max": 88213,
      "avg": 79732, "std": 1929}),
    ("count=7 curr=12(all same)",
     {"count": 7, "curr": 12, "first": 12, "min": 12, "max": 12, "avg": 12,
      "std": 0}),
    ("INFO: count=1 curr=146161",
     {"count": 1, "curr": 146161, "first": 146161, "min": 146161,
      "max": 146161, "avg": 146161, "std": 0}),
    ("Timings (microseconds): count=1 curr=171", None),
])
def test_stat_lines(line, expected):
    assert parse.parse_stat_line(line) == expected


def test_unknown_lines_are_ignored():
    noisy = NEW_FORMAT.replace(
        "INFO: Initialized session",
        "WARNING: something new in a future release\n"
        "garbage line = 12 with count=in the middle\n"
        "INFO: Initialized session")
    assert parse.parse(noisy) == parse.parse(NEW_FORMAT)


def test_missing_timing_line_is_an_error_with_the_last_output():
    text = NEW_FORMAT.split("INFO: Inference timings")[0] + \
        "ERROR: Failed to invoke the interpreter.\n"
    with pytest.raises(parse.BenchmarkOutputError,
                       match="no inference timing line.*Failed to invoke"):
        parse.parse(text)
    with pytest.raises(parse.BenchmarkOutputError, match="no output at all"):
        parse.parse("")
