"""Result records and how any file reaches the disk: validated ``result.json``, atomic writes.

A :class:`Result` is what one experiment produced. Its JSON form carries a SHA-256 checksum of
its own content and the checksums of the files committed with it (``figure.png``), so a reader
can tell a complete record from a truncated, garbled, hand-edited or mismatched one:
:meth:`Result.from_json` checks the schema (every field present with its type), the schema
version and the checksum, and raises ``ValueError`` in one line naming what is wrong.

A write goes to a temporary file in the destination folder and is renamed over the target, so a
reader (or an interrupted run) never sees a half-written file and an older file is replaced only
by a complete new one. The temporary's name says that failgeom wrote it and which process did,
``.<name>.failgeom-<host>-<pid>-<random>.tmp`` (:func:`temporary_writer` reads it back), so
only a temporary whose writer is gone is ever cleaned up, and never a file of anyone else. A
failed write (no space, permissions, a read-only file system) raises ``OSError`` whose
``filename`` is the target and whose ``strerror`` is the system's text; the temporary file is
removed. Records are read with :func:`read_regular`, which names and refuses a FIFO, a device,
a directory or a symbolic link where a file should be (a FIFO would otherwise hang the read).
"""

from __future__ import annotations

import datetime as _dt
import errno
import hashlib
import json
import math
import os
import platform
import re
import socket
import stat
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import cast

import numpy as np

SCHEMA_VERSION = 2
DEFAULT_OUT = Path("failgeom-results")
TMP_SUFFIX = ".tmp"
TMP_TAG = ".failgeom-"
_TMP_NAME = re.compile(r"^\.(?P<target>.+)\.failgeom-(?P<host>[A-Za-z0-9_]+)-(?P<pid>[0-9]+)-[a-z0-9_]+\.tmp$")

#: the fields a result record must have (the others have defaults)
REQUIRED_FIELDS = ("experiment", "preset", "config", "seeds", "metrics", "curves")
#: the fields of result.json and their JSON types
RESULT_FIELDS = {"experiment": str, "preset": str, "config": dict, "seeds": dict, "metrics": dict,
                 "curves": dict, "environment": dict, "timing": dict, "schema_version": int,
                 "files": dict}


@dataclass
class Result:
    """What one experiment run produced (see docs/scaling.md, "On the disk").

    ``files`` maps the name of a file committed with the result (``figure.png``) to its SHA-256;
    the runner fills it in when it writes the pair.
    """

    experiment: str
    preset: str
    config: dict
    seeds: dict
    metrics: dict
    curves: dict
    environment: dict = field(default_factory=lambda: environment())
    timing: dict = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION
    files: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """The JSON-able record (non-finite floats become None), without the checksum."""
        return jsonable(asdict(self))

    def to_json(self) -> str:
        data = self.to_dict()
        data["sha256"] = checksum(data)
        return json.dumps(data, indent=1, allow_nan=False) + "\n"

    @classmethod
    def from_dict(cls, data) -> "Result":
        """The inverse of :meth:`to_dict`; ValueError in one line for anything else."""
        if not isinstance(data, dict):
            raise ValueError(f"the top level is a {type(data).__name__}, not an object")
        version = data.get("schema_version", SCHEMA_VERSION)
        if version != SCHEMA_VERSION:
            raise ValueError(f"schema_version {version!r} is not {SCHEMA_VERSION}")
        unknown = sorted(set(data) - set(RESULT_FIELDS))
        if unknown:
            raise ValueError(f"unknown field(s) {', '.join(map(repr, unknown))}")
        for name in REQUIRED_FIELDS:
            if name not in data:
                raise ValueError(f"field {name!r} is missing")
        for name, value in data.items():
            kind = RESULT_FIELDS[name]
            if not isinstance(value, kind) or isinstance(value, bool):
                raise ValueError(f"field {name!r} is {type(value).__name__}, not {kind.__name__}")
        return cls(**data)

    @classmethod
    def from_json(cls, text) -> "Result":
        """Parse and validate a record written by :meth:`to_json` (every field, the schema
        version and the checksum); ValueError in one line."""
        try:
            data = json.loads(text)
        except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError
            raise ValueError(f"not valid JSON ({_first_line(exc)})") from None
        if not isinstance(data, dict):
            raise ValueError(f"the top level is a {type(data).__name__}, not an object")
        if data.get("schema_version") != SCHEMA_VERSION:
            raise ValueError(f"schema_version {data.get('schema_version')!r} is not {SCHEMA_VERSION}")
        stored = data.pop("sha256", None)
        for name in RESULT_FIELDS:
            if name not in data:
                raise ValueError(f"field {name!r} is missing")
        result = cls.from_dict(data)
        if stored != checksum(data):
            raise ValueError("checksum mismatch (the file was changed or damaged after it was written)")
        return result

    def save(self, folder) -> Path:
        """Write ``folder/result.json`` atomically; returns its path."""
        path = Path(folder) / "result.json"
        atomic_write_text(path, self.to_json())
        return path

    @classmethod
    def load(cls, path) -> "Result":
        """Read and validate ``path`` (a result.json or its folder); OSError or ValueError."""
        path = Path(path)
        if path.is_dir():
            path = path / "result.json"
        return cls.from_json(read_regular(path))


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def jsonable(obj):
    """Plain JSON types; non-finite floats become None (JSON has no NaN)."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, (np.floating, float)):
        value = float(obj)
        return value if math.isfinite(value) else None
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


def canonical_json(data, allow_nan: bool = False) -> str:
    """One fixed text for a JSON-able value (sorted keys, no spaces): what checksums cover."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), allow_nan=allow_nan)


def checksum(data, allow_nan: bool = False) -> str:
    """SHA-256 (hex) of :func:`canonical_json` of ``data``."""
    return hashlib.sha256(canonical_json(data, allow_nan).encode("utf-8")).hexdigest()


def file_checksum(path) -> str:
    """SHA-256 (hex) of a regular file's bytes (see :func:`read_regular`)."""
    return hashlib.sha256(read_regular(path)).hexdigest()


def _file_mode() -> int:
    # mkstemp creates 0600 files; a result should get the usual mode, 0666 less the umask
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _write_all(fd: int, data: bytes) -> None:
    """Write every byte of ``data`` to ``fd`` (a short write is retried); the one low-level writer."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def host_tag() -> str:
    """This machine's name as it appears in temporary file names (letters, digits, ``_``)."""
    return re.sub(r"[^A-Za-z0-9]+", "_", socket.gethostname())[:40] or "host"


def temporary_prefix(name: str) -> str:
    """The prefix of a temporary for the file ``name``, naming failgeom, this host and this pid."""
    return f".{name}{TMP_TAG}{host_tag()}-{os.getpid()}-"


def temporary_writer(path) -> tuple[str, int] | None:
    """``(host, pid)`` of the process that made the failgeom temporary ``path``, or None when the
    name is not one failgeom writes (a user's ``.todo.tmp``, another program's file)."""
    match = _TMP_NAME.match(Path(path).name)
    return (match["host"], int(match["pid"])) if match else None


def file_kind(mode: int) -> str:
    """"a directory", "a FIFO", ... for an ``st_mode`` that is not a regular file's."""
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISLNK, "a symbolic link"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


class NotARegularFileError(OSError):
    """A FIFO, device, directory or symbolic link stands where failgeom keeps a regular file;
    ``reason`` (its ``strerror``) says which, e.g. "is a FIFO, not a regular file"."""

    @property
    def reason(self) -> str:
        return cast(str, self.strerror)  # always given: every raise passes a reason


def read_regular(path) -> bytes:
    """The bytes of the regular file ``path``, never following a symbolic link and never
    blocking on a FIFO or device.

    Raises
    ------
    FileNotFoundError
        If there is nothing at ``path``.
    NotARegularFileError
        (an OSError) If ``path`` is a directory, FIFO, device, socket or symbolic link; its
        ``strerror`` says which and ``filename`` is ``path``.
    OSError
        If the file cannot be read, with ``filename`` set.
    """
    path = os.fspath(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise NotARegularFileError(errno.ELOOP, "is a symbolic link, not a file failgeom wrote", path) from None
        if isinstance(exc, FileNotFoundError):
            raise
        raise OSError(exc.errno, exc.strerror or str(exc), path) from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotARegularFileError(errno.EINVAL, f"is {file_kind(mode)}, not a regular file", path)
        chunks: list[bytes] = []
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
    except NotARegularFileError:
        raise
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror or str(exc), path) from None
    finally:
        os.close(fd)


#: called with the target path before every atomic write (see :func:`set_write_guard`)
_write_guard = None


def set_write_guard(guard) -> None:
    """Install ``guard(path)`` (or None), called before every atomic write of this process.

    The runner's worker processes install one that raises when the driver that started the
    cell no longer holds its folder's lock, so an orphaned cell never writes a checkpoint.
    """
    global _write_guard
    _write_guard = guard


def atomic_write_bytes(path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename.

    Raises
    ------
    OSError
        With ``filename`` set to ``path`` (whatever step failed) and the system's ``strerror``.
    """
    atomic_write_files({path: data})


def atomic_write_text(path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_files(files: dict) -> None:
    """Write several files as one unit: every ``{path: bytes}`` goes to a temporary first, and
    only when all are on disk are they renamed into place; if one cannot be written (a full
    disk), none is replaced and the temporaries are removed.

    Raises
    ------
    OSError
        Naming the file that could not be written.
    """
    staged: list[tuple[str | None, Path]] = []
    tmp: str | None
    try:
        for path, data in files.items():
            path = Path(path)
            if _write_guard is not None:
                _write_guard(path)
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=temporary_prefix(path.name), suffix=TMP_SUFFIX)
                staged.append((tmp, path))
                try:
                    os.fchmod(fd, _file_mode())
                    _write_all(fd, data)
                    os.fsync(fd)
                finally:
                    os.close(fd)
            except OSError as exc:
                raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from None
        for i, (tmp, path) in enumerate(staged):
            if _write_guard is not None:
                _write_guard(path)
            try:
                os.replace(cast(str, tmp), path)
            except OSError as exc:
                raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from None
            staged[i] = (None, path)
    finally:
        for tmp, _ in staged:
            if tmp is not None:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass


def figure_bytes(fig, fmt: str = "png", **kwargs) -> bytes:
    """``fig.savefig`` (tight bounding box by default) into memory."""
    import io

    kwargs.setdefault("bbox_inches", "tight")
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, **kwargs)
    return buf.getvalue()


def atomic_savefig(fig, path, **kwargs) -> None:
    """``fig.savefig`` to memory, then an atomic write to ``path``."""
    atomic_write_bytes(path, figure_bytes(fig, Path(path).suffix.lstrip(".") or "png", **kwargs))


def check_writable(folder) -> Path:
    """Create ``folder`` if needed and check a file can be written there.

    Raises
    ------
    ValueError
        If ``folder`` is empty or a file stands where it or one of its parents should be (bad
        input).
    OSError
        If the folder cannot be written (permissions, a read-only file system, no space or no
        inodes left): a failed write, with ``filename`` set to the folder.
    """
    if not str(folder).strip():
        raise ValueError("the output folder must be a path, got an empty string")
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=temporary_prefix("write-check"), suffix=TMP_SUFFIX)
        os.close(fd)
        os.unlink(tmp)
    except (FileExistsError, NotADirectoryError) as exc:
        raise ValueError(f"output folder {str(folder)!r} is not writable: a file stands in its path "
                         f"({exc.strerror or exc})") from None
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror or str(exc), str(folder)) from None
    return folder


def _blas() -> str:
    try:
        config = np.show_config(mode="dicts")
        blas = config.get("Build Dependencies", {}).get("blas", {})
        return f"{blas.get('name', '?')} {blas.get('version', '')}".strip()
    except Exception:  # older NumPy without mode="dicts"
        return "unknown"


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment() -> dict:
    """Versions, BLAS, CPU and date of the machine that ran the experiment."""
    from . import __version__

    return {
        "failgeom": __version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "blas": _blas(),
        "cpu": _cpu(),
        "cpu_count": os.cpu_count(),
        "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS", "default"),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
