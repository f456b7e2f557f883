"""The collection order `make test` schedules by: files holding a slow test first."""
import types

from slow_first import slow_files_first


def item(nodeid, slow=False):
    return types.SimpleNamespace(nodeid=nodeid,
                                 get_closest_marker=lambda name: slow and name == "slow")


def test_files_with_a_slow_test_come_first_and_keep_their_order():
    items = [item("a.py::x"), item("b.py::y"), item("b.py::z", slow=True), item("c.py::w"),
             item("d.py::v", slow=True)]
    assert [i.nodeid for i in slow_files_first(items)] == [
        "b.py::y", "b.py::z", "d.py::v", "a.py::x", "c.py::w"]
