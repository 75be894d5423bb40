"""The table of the store's and runner's fault drivers: per fault class, the cases tried, handled
cleanly and mishandled (a failing case). Runs the drivers, the slow ones included (about a minute
on two cores):

    python tests/fault_table.py            # from the checkout, with failgeom importable

A case is one test item (a parametrized case, or a property test over its examples, counted as
the examples hypothesis ran); the classes are the prefixes of the test names in
tests/test_store_faults.py, plus the damaged records of tests/test_store.py, the lost scheduler
(tests/test_runner_scheduler_lost.py) and the terminal (tests/test_runner_terminal.py).
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
FILES = ["test_store_faults.py", "test_store.py", "test_runner_scheduler_lost.py", "test_runner_terminal.py"]
CLASSES = {"reuse": "wrong or foreign records reused", "touch": "files that are not ours",
           "special": "special files where a record should be", "messages": "messages and exit codes",
           "orphans": "orphaned workers, writes without the lock", "damaged": "damaged records and failed writes",
           "scheduler": "a lost Dask scheduler", "terminal": "what the user sees (arguments, progress, Ctrl-C)"}


def fault_class(nodeid: str) -> str:
    path, _, name = nodeid.partition("::")
    name = name.removeprefix("test_")
    if path.endswith("test_store.py"):
        return "damaged"
    if path.endswith("test_runner_scheduler_lost.py"):
        return "scheduler"
    if path.endswith("test_runner_terminal.py"):
        return "terminal"
    return name.split("_", 1)[0]


class Collect:
    def __init__(self):
        self.tried, self.clean = Counter(), Counter()
        self.examples = {}

    def pytest_runtest_logreport(self, report):
        if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
            kind = fault_class(report.nodeid)
            n = self.examples.get(report.nodeid, 1)
            self.tried[kind] += n
            self.clean[kind] += n if report.outcome == "passed" else 0

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_call(self, item):
        yield
        stats = getattr(item.obj, "hypothesis", None)
        settings = getattr(item.obj, "_hypothesis_internal_use_settings", None)
        if stats is not None and settings is not None:
            self.examples[item.nodeid] = settings.max_examples


def main() -> int:
    collect = Collect()
    status = pytest.main(["-q", "-p", "no:cacheprovider", "-m", "slow or not slow",
                          *[str(HERE / f) for f in FILES]], plugins=[collect])
    print("\n| fault class | tried | clean | mishandled |\n| --- | --- | --- | --- |")
    for kind, what in CLASSES.items():
        tried, clean = collect.tried[kind], collect.clean[kind]
        print(f"| {kind}: {what} | {tried} | {clean} | {tried - clean} |")
    total, clean = sum(collect.tried.values()), sum(collect.clean.values())
    print(f"| **all** | **{total}** | **{clean}** | **{total - clean}** |")
    return int(status)


if __name__ == "__main__":
    sys.exit(main())
