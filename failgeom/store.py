"""The runner's on-disk store: cell records, the committed result + figure pair, locks, cleanup.

One result folder (``<out>/<experiment>``, or one grid point's folder) holds::

    result.json                  the merged Result; records figure.png's SHA-256
    figure.png
    cells/<digest>/<cell>.json   one cell's output with its experiment, key, config, seed and
                                 failgeom version, and a SHA-256 of all of it
    cells/<digest>/<cell>.ckpt/  the checkpoints of a long cell while it runs
    .lock                        held (``flock``) by the run writing the folder; holds its pid

``<digest>`` names the exact (experiment, config, seed, failgeom version), so a changed config
never meets the cells of another one. Every file is validated when read back; a damaged or
foreign one is reported in one line and recomputed, never reused. Files are written atomically
(see :mod:`failgeom.results`), the figure before the result that records its checksum, so a
result whose figure is missing or different counts as incomplete. A run that was killed leaves
at most ``.*.tmp`` files, removed by :func:`clean_temporaries` at the next run.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import socket
from pathlib import Path

from .results import (SCHEMA_VERSION, TMP_SUFFIX, Result, atomic_write_bytes, atomic_write_text,
                      canonical_json, checksum, file_checksum)

CELL_FORMAT = "failgeom-cell"
CELL_VERSION = 1
RESULT_FILE, FIGURE_FILE, LOCK_FILE = "result.json", "figure.png", ".lock"
_SAFE = re.compile(r"[^A-Za-z0-9_.=+-]+")


class LockedError(RuntimeError):
    """Another live run holds the output folder's lock."""


def config_json(config) -> dict:
    """The JSON form of a config (tuples become lists), as result.json and cell records store it."""
    return json.loads(json.dumps(config.to_dict()))


def identity(experiment: str, config, seed: int) -> dict:
    """What a cell's numbers depend on besides its key: experiment, config, seed, version."""
    from . import __version__

    return {"experiment": experiment, "config": config_json(config), "seed": int(seed),
            "failgeom": __version__}


def digest(ident: dict) -> str:
    return checksum(ident)[:16]


def cell_name(key: tuple) -> str:
    """A file name for a cell key, e.g. ``k=3,end_to_end`` for ``(3, "end_to_end")``."""
    text = ",".join(_SAFE.sub("_", str(part)) for part in key) or "cell"
    return text[:80] + "-" + checksum(list(key))[:6]


def canonical_output(output, where: str) -> str:
    """A cell's output as canonical JSON text; TypeError naming ``where`` if it is not JSON-able."""
    bad = output if not isinstance(output, dict) else _foreign(output)
    if bad is not None:
        raise TypeError(f"{where} returned a {type(bad).__name__} ({str(bad)[:40]!r}) in its output; a "
                        "cell's output must be JSON-able: dicts with str keys, lists, floats, ints, str, "
                        "bool, None (no numpy arrays or numpy scalars)")
    return canonical_json(output, allow_nan=True)


def _foreign(obj):
    """The first value inside ``obj`` that is not plain JSON, or None."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            if not isinstance(k, str):
                return k
            bad = _foreign(v)
            if bad is not None:
                return bad
        return None
    if isinstance(obj, (list, tuple)):
        for v in obj:
            bad = _foreign(v)
            if bad is not None:
                return bad
        return None
    if obj is None or type(obj) in (bool, int, float, str):
        return None
    return obj


class CellStore:
    """The cell records of one (experiment, config, seed) under ``folder/cells/<digest>/``."""

    def __init__(self, folder, experiment: str, config, seed: int):
        self.folder = Path(folder)
        self.ident = identity(experiment, config, seed)
        self.dir = self.folder / "cells" / digest(self.ident)

    def path(self, key: tuple) -> Path:
        return self.dir / f"{cell_name(key)}.json"

    def checkpoint_dir(self, key: tuple) -> Path:
        return self.dir / f"{cell_name(key)}.ckpt"

    def load(self, key: tuple) -> tuple[dict | None, dict, str]:
        """``(output, times, "")`` of a complete record, or ``(None, {}, reason)``.

        ``times`` holds the cell's ``wall_s`` and ``cpu_s`` (seconds); ``reason`` is empty when
        there is no record, else says in a few words what is wrong.
        """
        path = self.path(key)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None, {}, ""
        except OSError as exc:
            return None, {}, f"cannot be read ({exc.strerror})"
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            return None, {}, "is not valid JSON (truncated or garbled)" if raw else "is empty"
        if not isinstance(data, dict):
            return None, {}, f"holds a {type(data).__name__}, not a cell record"
        stored = data.pop("sha256", None)
        if data.get("format") != CELL_FORMAT or data.get("version") != CELL_VERSION:
            return None, {}, "is not a failgeom cell record of this version"
        if stored != checksum(data, allow_nan=True):
            return None, {}, "has a wrong checksum (changed or damaged after it was written)"
        for name, value in self.ident.items():
            if data.get(name) != value:
                return None, {}, f"belongs to another {name} ({str(data.get(name))[:40]})"
        if data.get("key") != json.loads(json.dumps(list(key))):
            return None, {}, f"belongs to another cell ({data.get('key')})"
        output, wall, cpu = data.get("output"), data.get("wall_s"), data.get("cpu_s")
        if not isinstance(output, dict) or not all(isinstance(t, (int, float)) for t in (wall, cpu)):
            return None, {}, "has no output"
        return output, {"wall_s": float(wall), "cpu_s": float(cpu)}, ""

    def save(self, key: tuple, output_text: str, wall_s: float, cpu_s: float, worker: str = "") -> dict:
        """Write the record of a finished cell atomically; returns its output (parsed)."""
        data = dict(self.ident, format=CELL_FORMAT, version=CELL_VERSION, key=list(key),
                    output=json.loads(output_text), wall_s=float(wall_s), cpu_s=float(cpu_s), worker=worker)
        data = json.loads(json.dumps(data, allow_nan=True))
        data["sha256"] = checksum(data, allow_nan=True)
        atomic_write_text(self.path(key), json.dumps(data, allow_nan=True) + "\n")
        return data["output"]

    def drop_checkpoint(self, key: tuple) -> None:
        """Remove a finished cell's checkpoints (its record now holds everything)."""
        shutil.rmtree(self.checkpoint_dir(key), ignore_errors=True)

    def wall_hint(self, key: tuple) -> float | None:
        """Seconds the same cell took under any config of this folder (a scheduling estimate)."""
        walls = []
        for path in (self.folder / "cells").glob(f"*/{cell_name(key)}.json"):
            try:
                wall = json.loads(path.read_bytes()).get("wall_s")
            except (OSError, ValueError, AttributeError):
                continue
            if isinstance(wall, (int, float)):
                walls.append(float(wall))
        return max(walls) if walls else None


# --------------------------------------------------------------------------------------------
# the result + figure pair


def commit_result(folder, result: Result, figure: bytes | None) -> Path:
    """Write ``figure.png`` (if given) and then ``result.json`` recording its checksum."""
    folder = Path(folder)
    result.files = {}
    if figure is not None:
        atomic_write_bytes(folder / FIGURE_FILE, figure)
        result.files[FIGURE_FILE] = file_checksum(folder / FIGURE_FILE)
    return result.save(folder)


def load_result(folder, need_figure: bool = True) -> tuple[Result | None, str]:
    """A complete, valid result in ``folder``: ``(result, "")``, or ``(None, reason)``."""
    folder = Path(folder)
    path = folder / RESULT_FILE
    if not path.is_file():
        return None, "no result.json"
    try:
        result = Result.load(path)
    except OSError as exc:
        return None, f"result.json cannot be read ({exc.strerror})"
    except ValueError as exc:
        return None, f"result.json is damaged or foreign: {exc}"
    want = result.files.get(FIGURE_FILE)
    if need_figure or want is not None:
        if want is None:
            return None, "result.json was written without figure.png"
        try:
            have = file_checksum(folder / FIGURE_FILE)
        except FileNotFoundError:
            return None, "no figure.png"
        except OSError as exc:
            return None, f"figure.png cannot be read ({exc.strerror})"
        if have != want:
            return None, "figure.png does not match result.json (damaged, or from another run)"
    if result.schema_version != SCHEMA_VERSION:
        return None, f"schema version {result.schema_version}"
    return result, ""


# --------------------------------------------------------------------------------------------
# locks and leftovers


class FolderLock:
    """An exclusive ``flock`` on ``folder/.lock`` holding this process's pid and host.

    The kernel drops the lock when its holder dies (also by ``kill -9``), so a lock file left
    by a dead run is simply taken over. A live holder makes :meth:`acquire` raise
    :class:`LockedError` in one line naming its pid.
    """

    def __init__(self, folder):
        self.path = Path(folder) / LOCK_FILE
        self.fd = None

    def acquire(self) -> "FolderLock":
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise OSError(exc.errno, exc.strerror, str(self.path)) from None
            raise LockedError(f"{self.path.parent} is being written by another failgeom run "
                              f"({self.holder()}); wait for it to finish or stop it") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode())
        self.fd = fd
        return self

    def holder(self) -> str:
        try:
            return self.path.read_text().strip() or "pid unknown"
        except OSError:
            return "pid unknown"

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing drops the flock; the file stays (harmless, reused)
            self.fd = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()


def clean_temporaries(folder) -> list[Path]:
    """Remove the ``.*.tmp`` files an interrupted write left under ``folder``; returns them.

    Call only while holding the folder's :class:`FolderLock` (no live writer then).
    """
    removed = []
    folder = Path(folder)
    if not folder.is_dir():
        return removed
    for path in folder.rglob(f".*{TMP_SUFFIX}"):
        try:
            if path.is_file():
                path.unlink()
                removed.append(path)
        except OSError:
            pass
    return removed


__all__ = ["CellStore", "FolderLock", "LockedError", "clean_temporaries", "commit_result", "config_json",
           "identity", "load_result"]
