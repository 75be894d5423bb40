"""Progress for a run whose stderr is not a terminal (``make reproduce > log``): one plain line
every :data:`EVERY_S` seconds, with the time left estimated from what each cell is expected to
cost rather than from the count of cells.

A cell's expected cost is the wall time the same cell took before in the same folder (any
config: :meth:`failgeom.store.CellStore.wall_hint`); a cell never timed there counts as the mean
of the cells timed so far (stored or finished in this run). The estimate is the expected seconds
of the cells still to run over the number of workers; with no timing at all it is left out.
"""

from __future__ import annotations

import threading
import time

EVERY_S = 30.0


def duration(seconds: float) -> str:
    """``45 s``, ``3 min 05 s``, ``2 h 10 min``."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


class Heartbeat:
    """Says one progress line every ``every`` seconds while a run is going (a daemon thread).

    ``expected`` maps each cell to run to its expected seconds (None when unknown); call
    :meth:`done` as each one finishes (with its measured seconds) and :meth:`stop` at the end.
    """

    measured: list[float]

    def __init__(self, say, expected: dict, reused: int, workers: int, every: float | None = None, bar=None):
        self.say, self.every, self.workers = say, EVERY_S if every is None else every, max(1, workers)
        self.expected, self.reused, self.total = dict(expected), reused, len(expected) + reused
        self.finished, self.measured, self.last = 0, [], ""
        self.start = time.monotonic()
        self.bar = bar  # a live progress bar (tqdm) shows the estimate instead of lines
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="failgeom-progress", daemon=True)
        if say is not None:
            self._thread.start()
        self._show()

    def done(self, cell, seconds: float | None, label: str) -> None:
        self.expected.pop(cell, None)
        self.finished += 1
        self.last = label
        if seconds is not None:
            self.measured.append(float(seconds))
        self._show()

    def _show(self) -> None:
        if self.bar is None:
            return
        left = self.left()
        self.bar.set_postfix_str("time left: " + ("?" if left is None or not self.expected else
                                                   f"about {duration(left)} (by cell cost)"), refresh=False)

    def line(self) -> str:
        elapsed = time.monotonic() - self.start
        text = (f"progress: {self.finished + self.reused}/{self.total} cells done"
                + (f" ({self.reused} reused)" if self.reused else "") + f", {duration(elapsed)} elapsed")
        left = self.left()
        if left is not None and self.expected:
            text += f", about {duration(left)} left"
        return text + (f"; last: {self.last}" if self.last else "")

    def left(self) -> float | None:
        """Expected seconds still to run over the workers, or None without any timing."""
        known = [s for s in self.expected.values() if s is not None] + self.measured
        if not known:
            return None
        mean = sum(known) / len(known)
        return sum(mean if s is None else s for s in self.expected.values()) / self.workers

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.say(self.line())
            except Exception:  # a closed stream must not end the run
                return

    def stop(self) -> None:
        self._stop.set()


__all__ = ["EVERY_S", "Heartbeat", "duration"]
