"""Files that hold a `slow` test are collected first. `make test` spreads whole files over
two workers (`--dist loadfile`) in collection order, so a long file collected last leaves
one worker busy alone at the end; started first, the short files fill in around it."""


def slow_files_first(items):
    """`items` reordered: files with a slow-marked test first, each file's tests (and the
    files within each group) in their collected order."""
    slow = {item.nodeid.split("::")[0] for item in items if item.get_closest_marker("slow")}
    return sorted(items, key=lambda item: item.nodeid.split("::")[0] not in slow)


def pytest_collection_modifyitems(items):
    items[:] = slow_files_first(items)
