"""The runner's on-disk store: cell records, the committed result + figure pair, locks, cleanup.

One result folder (``<out>/<experiment>``, or one grid point's folder) holds::

    result.json                  the merged Result; records figure.png's SHA-256
    figure.png
    cells/<digest>/<cell>.json   one cell's output with its experiment, key, config, seed and
                                 failgeom version, and a SHA-256 of all of it
    cells/<digest>/<cell>.ckpt/  the checkpoints of a long cell while it runs
    .lock                        held (``flock``) by the run writing the folder; holds its pid

``<digest>`` names the exact (experiment, config, seed, failgeom version), so a changed config
never meets the cells of another one. Every file is validated when read back (a FIFO, device,
directory or symbolic link where a record should be is named, never read); a damaged or
foreign one is reported in one line and recomputed, never reused. Files are written atomically
(see :mod:`failgeom.results`), the figure before the result that records its checksum, so a
result whose figure is missing or different counts as incomplete. A run that was killed leaves
at most failgeom's own temporaries (``.<name>.failgeom-<host>-<pid>-<random>.tmp``), removed by
:func:`clean_temporaries` at the next run once their writer is gone. The lock is taken only on
a regular file (never through a symbolic link), and a run refused by it is told which process
holds it, as the kernel reports it.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import socket
import stat
import time
from pathlib import Path
from typing import cast

from .experiments.base import cell_file_name as cell_name
from .results import (SCHEMA_VERSION, TMP_SUFFIX, NotARegularFileError, Result, atomic_write_bytes,
                      atomic_write_text, canonical_json, checksum, file_checksum, file_kind, host_tag, read_regular,
                      temporary_writer)

CELL_FORMAT = "failgeom-cell"
CELL_VERSION = 1
RESULT_FILE, FIGURE_FILE, LOCK_FILE = "result.json", "figure.png", ".lock"
_SAFE = re.compile(r"[^A-Za-z0-9_.=+-]+")
#: a temporary of another machine (a cluster worker) counts as abandoned after this many seconds
FOREIGN_TMP_AGE_S = 24 * 3600


class RunError(RuntimeError):
    """A run stopped for a reason outside any one cell; the message is one line (exit 1)."""


class LockedError(RunError):
    """Another live run holds the output folder's lock."""


class LockFileError(RunError):
    """The folder's ``.lock`` is not a regular file of ours (a symbolic link, FIFO, directory,
    device, or a file with other hard links): it is named and left alone."""


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

    def __init__(self, folder, experiment: str, config, seed: int, check_output=None):
        self.folder = Path(folder)
        self.ident = identity(experiment, config, seed)
        self.dir = self.folder / "cells" / digest(self.ident)
        #: ``check_output(key, output)`` raises ValueError/TypeError/KeyError for an output the
        #: experiment cannot use; a stored output that fails it is recomputed
        self.check_output = check_output

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
            raw = read_regular(path)
        except FileNotFoundError:
            return None, {}, ""
        except NotARegularFileError as exc:
            return None, {}, exc.reason
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
        why = output_problem(output, key, self.check_output)
        if why:
            return None, {}, why
        return output, {"wall_s": float(cast(float, wall)), "cpu_s": float(cast(float, cpu))}, ""

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
                wall = json.loads(read_regular(path)).get("wall_s")
            except (OSError, ValueError, AttributeError):
                continue
            if isinstance(wall, (int, float)):
                walls.append(float(wall))
        return max(walls) if walls else None


def output_problem(output, key: tuple, check=None) -> str:
    """Why a cell's output cannot be used, in a few words, or "" when it can: it must be a
    non-empty dict and pass the experiment's ``check(key, output)`` if it has one."""
    if not isinstance(output, dict):
        return f"has an output of type {type(output).__name__}, not a dict"
    if not output:
        return "has an empty output"
    if check is not None:
        try:
            check(tuple(key), output)
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            return f"has an output the experiment cannot use ({type(exc).__name__}: {text})"
    return ""


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


class Reason(str):
    """Why a stored result is not reused: the text, and whether it names damage (``damaged``:
    a file that is there and cannot be used, which the runner reports) rather than an ordinary
    miss (no result yet, another preset, seed, config or version: reported by no one)."""

    damaged: bool

    def __new__(cls, text: str, damaged: bool = False):
        reason = super().__new__(cls, text)
        reason.damaged = damaged
        return reason


def load_result(folder, need_figure: bool = True, experiment: str | None = None) -> tuple[Result | None, str]:
    """A complete, valid result in ``folder``: ``(result, "")``, or ``(None, reason)``.

    With ``experiment``, a result recorded for another experiment is refused too. A reason is a
    :class:`Reason`: ``reason.damaged`` says whether a person should hear about it (a file that
    is there and cannot be used) or not (nothing there yet, or a result of another config).
    """
    folder = Path(folder)
    path = folder / RESULT_FILE
    try:
        result = Result.load(path)
    except FileNotFoundError:
        return None, "no result.json"
    except NotARegularFileError as exc:
        return None, Reason(f"result.json {exc.strerror}", damaged=True)
    except OSError as exc:
        return None, Reason(f"result.json cannot be read ({exc.strerror})", damaged=True)
    except ValueError as exc:
        return None, Reason(f"result.json is damaged or foreign: {exc}", damaged=True)
    want = result.files.get(FIGURE_FILE)
    if need_figure or want is not None:
        if want is None:
            return None, "result.json was written without figure.png"
        try:
            have = file_checksum(folder / FIGURE_FILE)
        except FileNotFoundError:
            return None, "no figure.png"
        except NotARegularFileError as exc:
            return None, Reason(f"{folder / FIGURE_FILE} {exc.strerror}", damaged=True)
        except OSError as exc:
            return None, Reason(f"figure.png cannot be read ({exc.strerror})", damaged=True)
        if have != want:
            return None, Reason("figure.png does not match result.json (damaged, or from another run)", damaged=True)
    if result.schema_version != SCHEMA_VERSION:
        return None, f"schema version {result.schema_version}"
    if experiment is not None and result.experiment != experiment:
        return None, Reason(f"result.json belongs to another experiment ({result.experiment[:40]!r})",
                            damaged=True)
    return result, ""


# --------------------------------------------------------------------------------------------
# locks and leftovers


class FolderLock:
    """An exclusive ``flock`` on ``folder/.lock`` holding this process's pid and host.

    The kernel drops the lock when its holder dies (also by ``kill -9``), so a lock file left
    by a dead run is simply taken over. A live holder makes :meth:`acquire` raise
    :class:`LockedError` in one line naming it (the process the kernel says holds the lock,
    which is not necessarily the pid written in the file). The file is opened without following
    a symbolic link and used only if it is a regular file with no other hard link; anything else
    is a :class:`LockFileError` naming it, and nothing is written.
    """

    def __init__(self, folder):
        self.path = Path(folder) / LOCK_FILE
        self.fd = None

    def acquire(self) -> "FolderLock":
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
        try:
            fd = os.open(self.path, flags, 0o644)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise LockFileError(self._refusal("a symbolic link")) from None
            if exc.errno == errno.EISDIR:
                raise LockFileError(self._refusal("a directory")) from None
            raise OSError(exc.errno, exc.strerror or str(exc), str(self.path)) from None
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise LockFileError(self._refusal(file_kind(st.st_mode)))
            if st.st_nlink != 1:
                raise LockFileError(self._refusal(f"a file with {st.st_nlink} hard links"))
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise OSError(exc.errno, exc.strerror, str(self.path)) from None
                raise LockedError(f"{self.path.parent} is being written by {self.holder(fd)}; wait for it "
                                  "to finish or stop it") from None
            try:
                os.ftruncate(fd, 0)
                os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode())
            except OSError as exc:
                raise OSError(exc.errno, exc.strerror or str(exc), str(self.path)) from None
        except BaseException:
            os.close(fd)
            raise
        self.fd = fd
        return self

    def _refusal(self, kind: str) -> str:
        return (f"{self.path} is {kind}, not a lock file failgeom created; failgeom locks only a regular "
                "file of its own: remove it (or choose another --out) and run again")

    def holder(self, fd: int | None = None) -> str:
        """Who holds the lock: "another failgeom run (pid N on HOST)" when the kernel's holder is the
        pid the file names, else "another process (pid N: its command)"; the file's text if the
        kernel does not say (not Linux, or another machine of a network file system)."""
        try:
            text = read_regular(self.path).decode("utf-8", "replace").strip()
        except OSError:
            text = ""
        pid = lock_holder_pid(fd) if fd is not None else None
        if pid is not None and pid != os.getpid():
            if text.startswith(f"pid {pid} on "):
                return f"another failgeom run ({text})"
            return f"another process (pid {pid}: {_command(pid)})"
        return f"another failgeom run ({text or 'pid unknown'})"

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing drops the flock; the file stays (harmless, reused)
            self.fd = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()


def lock_holder_pid(fd: int) -> int | None:
    """The pid holding a ``flock`` on the file open as ``fd``, from ``/proc/locks`` (Linux), or None."""
    try:
        st = os.fstat(fd)
        with open("/proc/locks", encoding="ascii", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    by_inode = []
    for line in lines:
        parts = line.split()
        if len(parts) < 6 or parts[1] != "FLOCK":  # "->" marks a waiter, not a holder
            continue
        try:
            major_hex, minor_hex, inode_text = parts[5].split(":")
            pid, major, minor, inode = int(parts[4]), int(major_hex, 16), int(minor_hex, 16), int(inode_text)
        except ValueError:
            continue
        if inode != st.st_ino:
            continue
        if (major, minor) == (os.major(st.st_dev), os.minor(st.st_dev)):
            return pid
        by_inode.append(pid)
    return by_inode[0] if len(by_inode) == 1 else None


def lock_is_held(path) -> bool:
    """Whether some process holds the ``flock`` of the lock file ``path``: ``/proc/locks`` if it
    shows one, else a shared lock tried and released at once (which a held lock refuses)."""
    import fcntl

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        if lock_holder_pid(fd) is not None:
            return True
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as exc:
            return exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def _command(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            words = f.read().split(b"\0")
        text = " ".join(w.decode("utf-8", "replace") for w in words if w)
    except OSError:
        return "command unknown"
    return (text[:77] + "...") if len(text) > 80 else (text or "command unknown")


def writer_gone(host: str, pid: int, mtime: float, now: float | None = None) -> bool:
    """Whether the process that wrote a temporary is gone: on this machine, no process ``pid``
    (a pid of another user counts as alive); on another machine (a cluster worker writing to a
    shared folder) failgeom cannot ask, and counts it gone after :data:`FOREIGN_TMP_AGE_S`."""
    if host != host_tag():
        return (now if now is not None else time.time()) - mtime > FOREIGN_TMP_AGE_S
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # EPERM: alive, of another user
        return False
    return False


def clean_temporaries(folder) -> list[Path]:
    """Remove the temporaries an interrupted write of failgeom left under ``folder``; returns them.

    Only files whose name failgeom writes (``.<name>.failgeom-<host>-<pid>-<random>.tmp``) and
    whose writer is gone (:func:`writer_gone`) are removed; any other ``.tmp`` file (a user's
    ``.todo.tmp``) is left alone, and so is every subfolder with a ``.lock`` of its own (the
    folder of another run, such as one point of a ``--grid``: that run cleans it). Call while
    holding the folder's :class:`FolderLock`.
    """
    removed: list[Path] = []
    folder = Path(folder)
    if not folder.is_dir():
        return removed
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not os.path.lexists(os.path.join(root, d, LOCK_FILE))]
        for name in files:
            if not name.endswith(TMP_SUFFIX):
                continue
            writer = temporary_writer(name)
            if writer is None:
                continue
            path = Path(root, name)
            try:
                st = os.lstat(path)
                if stat.S_ISREG(st.st_mode) and writer_gone(*writer, st.st_mtime):
                    path.unlink()
                    removed.append(path)
            except OSError:
                pass
    return removed


__all__ = ["CellStore", "FolderLock", "LockFileError", "LockedError", "Reason", "RunError", "clean_temporaries", "commit_result",
           "config_json", "identity", "load_result", "lock_holder_pid", "lock_is_held", "output_problem", "writer_gone"]
