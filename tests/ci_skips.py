"""Under CI=true a skipped test fails the run (issue 28): a skip there means a feature went
unexercised (a missing venv, browser or data set) while the run still reads green, as the
tflite-runtime checks once did for two days of commits. Loaded by conftest.py.

A skip that must stay goes in ALLOWED (node id prefix -> why); the run prints the list with
its reasons whenever one was used. Outside CI skips stay skips, so a laptop without Chromium
can still run the suite.
"""
import os

import pytest

# Node id prefix -> reason. Empty: on CI every test runs.
ALLOWED: dict[str, str] = {}


def on_ci() -> bool:
    return os.environ.get("CI") == "true"


def _allowed(nodeid: str) -> str | None:
    return next((why for prefix, why in ALLOWED.items() if nodeid.startswith(prefix)), None)


def _fail(report, what: str) -> None:
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    report.outcome = "failed"
    report.longrepr = (f"{what} skipped under CI=true ({reason}); CI must exercise every "
                       f"feature: provide what it needs, or add it to tests/ci_skips.py "
                       f"ALLOWED with a reason")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if (on_ci() and report.skipped and not hasattr(report, "wasxfail")
            and _allowed(report.nodeid) is None):
        _fail(report, report.nodeid)


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    report = outcome.get_result()
    if on_ci() and report.skipped and _allowed(report.nodeid) is None:
        _fail(report, f"module {report.nodeid}")


def pytest_terminal_summary(terminalreporter):
    if not on_ci():
        return
    used = {r.nodeid: _allowed(r.nodeid) for r in terminalreporter.stats.get("skipped", [])}
    if used:
        terminalreporter.write_sep("=", "skips allowed under CI=true")
        for nodeid, why in sorted(used.items()):
            terminalreporter.write_line(f"{nodeid}: {why}")
