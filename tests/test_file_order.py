"""The collection order `make test` schedules by: longest files first."""
import types

from file_order import file_seconds, longest_files_first


def item(nodeid):
    return types.SimpleNamespace(nodeid=nodeid)


def test_longest_files_first_unrecorded_before_all_each_file_in_its_order():
    items = [item("a.py::x"), item("b.py::y"), item("b.py::z"), item("c.py::w"),
             item("d.py::v")]
    seconds = {"a.py": 3.0, "b.py": 40.0, "c.py": 10.0}
    assert [i.nodeid for i in longest_files_first(items, seconds)] == [
        "d.py::v", "b.py::y", "b.py::z", "c.py::w", "a.py::x"]


def test_file_seconds_adds_setup_call_and_teardown_per_file():
    report = ["=== slowest durations ===",
              "12.50s call     tests/test_a.py::test_one[x-1]",
              "2.25s setup    tests/test_a.py::test_one[x-1]",
              "0.01s teardown tests/test_b.py::test_two",
              "7.00s call     tests/test_b.py::test_two",
              "(3 durations < 0.005s hidden.  Use -vv to show these durations.)"]
    assert file_seconds(report) == {"tests/test_a.py": 14.75, "tests/test_b.py": 7.01}
