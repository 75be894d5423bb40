"""Result records on disk: ``result.json`` and ``figure.png``, written atomically.

A write goes to a temporary file in the destination folder and is renamed over the target, so a
reader (or an interrupted run) never sees a half-written file and an older result is replaced
only by a complete new one.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import platform
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

SCHEMA_VERSION = 1
DEFAULT_OUT = Path("failgeom-results")


@dataclass
class Result:
    """What one experiment run produced (ARCHITECTURE.md, "Results on disk")."""

    experiment: str
    preset: str
    config: dict
    seeds: dict
    metrics: dict
    curves: dict
    environment: dict = field(default_factory=lambda: environment())
    timing: dict = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict:
        """The record as plain JSON types (non-finite floats become None)."""
        return _jsonable(asdict(self))

    @classmethod
    def from_dict(cls, data) -> "Result":
        """The inverse of :meth:`to_dict`; ValueError for anything that is not such a record."""
        if not isinstance(data, dict):
            raise ValueError(f"a result record must be a JSON object, got {type(data).__name__}")
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise ValueError(f"result schema_version {version!r} is not {SCHEMA_VERSION}")
        names = {f for f in cls.__dataclass_fields__}
        if set(data) - names or {"experiment", "preset", "config", "seeds", "metrics", "curves"} - set(data):
            raise ValueError(f"a result record has the fields {sorted(names)}, got {sorted(data)}")
        return cls(**data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, allow_nan=False) + "\n"

    @classmethod
    def from_json(cls, text: str) -> "Result":
        return cls.from_dict(json.loads(text))

    def save(self, folder) -> Path:
        """Write ``folder/result.json`` atomically; returns its path."""
        path = Path(folder) / "result.json"
        atomic_write_text(path, self.to_json())
        return path

    @classmethod
    def load(cls, path) -> "Result":
        path = Path(path)
        if path.is_dir():
            path = path / "result.json"
        return cls.from_json(path.read_text())


def _jsonable(obj):
    """Plain JSON types; non-finite floats become None (JSON has no NaN)."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, (np.floating, float)):
        value = float(obj)
        return value if math.isfinite(value) else None
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


def _file_mode() -> int:
    # mkstemp creates 0600 files; a result should get the usual mode, 0666 less the umask
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write_bytes(path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, _file_mode())
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_savefig(fig, path, **kwargs) -> None:
    """``fig.savefig`` (tight bounding box by default) to memory, then an atomic write to ``path``."""
    import io

    kwargs.setdefault("bbox_inches", "tight")
    buf = io.BytesIO()
    fig.savefig(buf, format=Path(path).suffix.lstrip(".") or "png", **kwargs)
    atomic_write_bytes(path, buf.getvalue())


def check_writable(folder) -> Path:
    """Create ``folder`` if needed and check a file can be written there; raise ValueError if not."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".write-check.")
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise ValueError(f"output folder {str(folder)!r} is not writable: {exc.strerror or exc}") from None
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
