"""The one training loop of the package, its checkpoints, and the seed streams.

:func:`fit` is the loop, :func:`train` its common case, :func:`seed_streams` names the streams.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import io
import json
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import numpy as np

from .results import atomic_write_bytes, read_regular
from .validation import integer, nonnegative_int, positive_int


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite; carries the step and the learning rate.

    Parameters
    ----------
    step, lr, replicas
        The 1-based update, the learning rate (scalar or ``(R,)``) and the replicas concerned.
    """

    def __init__(self, step: int, lr, replicas):
        self.step, self.lr, self.replicas = step, lr, list(replicas)
        lr_text = np.array2string(np.asarray(lr), precision=4) if np.ndim(lr) else f"{float(lr):g}"
        super().__init__(
            f"the training loss became non-finite at step {step} (replicas {self.replicas}) "
            f"with learning rate {lr_text}; lower the learning rate (lr), or with Adam raise a tiny "
            f"eps (it divides every step)"
        )


# ---------------------------------------------------------------------------------------------
# seed streams

#: integer key parts lie in [0, 2**31); names are hashed into [2**31, 2**32 - 1); the last
#: 32-bit word marks an unnamed child made by ``spawn``. Every part is one 32-bit word, so a key
#: path decodes uniquely and two different paths never give the same spawn key.
_INT_LIMIT = 2**31
_SPAWN_MARK = 2**32 - 1
_RECORDER: contextvars.ContextVar[list | None] = contextvars.ContextVar("failgeom_streams", default=None)


def _encode(part) -> int:
    if isinstance(part, str):
        return _INT_LIMIT + zlib.crc32(part.encode("utf-8")) % (_INT_LIMIT - 1)
    if isinstance(part, (bool, np.bool_)) or not isinstance(part, (int, np.integer)):
        raise TypeError(f"a stream key part must be an int or a str, got {part!r}")
    return integer(part, "an integer stream key part", 0, _INT_LIMIT - 1)


class Streams(np.random.SeedSequence):
    """A node of the seed-stream tree: a ``SeedSequence`` named by the user's seed and a key path.

    Use each node for one Generator, ``np.random.default_rng(node)`` (see :func:`record_streams`).

    Parameters
    ----------
    seed, spawn_key : int, tuple of int
        The user's seed and the encoded key path (make nodes with :func:`seed_streams`).
    """

    def __init__(self, seed: int, spawn_key: tuple = ()):
        super().__init__(int(seed), spawn_key=tuple(spawn_key))
        self._spawned = 0

    def child(self, *key) -> "Streams":
        """The named sub-node ``key``.

        Parameters
        ----------
        *key : int in [0, 2**31) or str

        Returns
        -------
        Streams
        """
        return Streams(cast(int, self.entropy), self.spawn_key + tuple(_encode(k) for k in key))

    def spawn(self, n_children: int) -> list["Streams"]:
        """Unnamed children, marked to never equal a named node; numbering goes on across calls."""
        start, self._spawned = self._spawned, self._spawned + int(n_children)
        return [Streams(cast(int, self.entropy), self.spawn_key + (_SPAWN_MARK, i)) for i in range(start, self._spawned)]

    def replica(self, r: int) -> np.random.Generator:
        """The Generator of replica ``r``: the one ``generators(n)[r]`` gives on a fresh node
        for any ``n > r``, so a replica computed alone draws what it draws among others.

        Parameters
        ----------
        r : int, at least 0

        Returns
        -------
        numpy.random.Generator
        """
        from .validation import nonnegative_int

        r = nonnegative_int(r, "r")
        return np.random.default_rng(Streams(cast(int, self.entropy), self.spawn_key + (_SPAWN_MARK, r)))

    def generators(self, n: int) -> list[np.random.Generator]:
        """``n`` Generators from ``n`` fresh unnamed children (one per replica, say).

        Parameters
        ----------
        n : int

        Returns
        -------
        list of numpy.random.Generator
        """
        return [np.random.default_rng(s) for s in self.spawn(n)]

    def generate_state(self, n_words, dtype=np.uint32):
        """``SeedSequence.generate_state``, recorded inside :func:`record_streams`."""
        recorded = _RECORDER.get()
        if recorded is not None:
            recorded.append((self.entropy, self.spawn_key))
        return super().generate_state(n_words, dtype)


def seed_streams(seed: int, *key) -> Streams:
    """The stream node of one part of an experiment: the user's seed plus a key path.

    Start the key with the experiment's name and name every part (``seed_streams(seed, "parity",
    d, "init")``): one part's numbers then do not depend on which others run, and no two share one.

    Parameters
    ----------
    seed : int, non-negative
    *key : int in [0, 2**31) or str

    Returns
    -------
    Streams

    Raises
    ------
    ValueError, TypeError
        For a bad ``seed`` or key part.
    """
    seed = nonnegative_int(seed, "seed")
    return Streams(seed, tuple(_encode(k) for k in key))


@contextlib.contextmanager
def record_streams() -> Iterator[list]:
    """Collect ``(seed, spawn_key)`` of each stream drawn from a :class:`Streams` node in the block.

    Yields
    ------
    list of (int, tuple), one entry per Generator made from a node (each draws its state once)
    """
    recorded: list = []
    token = _RECORDER.set(recorded)
    try:
        yield recorded
    finally:
        _RECORDER.reset(token)


# ---------------------------------------------------------------------------------------------
# curves and progress


@dataclass
class Curves:
    """Per-replica curves: ``values[name][i]`` is an (R,) list at ``steps[i]``.

    Parameters
    ----------
    steps, values : list of int, dict of str to list of lists of float
    """

    steps: list[int] = field(default_factory=list)
    values: dict[str, list[list[float]]] = field(default_factory=dict)

    def record(self, step: int, **metrics) -> None:
        """Append the point ``step``, with each metric's per-replica values.

        Parameters
        ----------
        step : int
        **metrics : float or array_like of shape (R,)
        """
        self.steps.append(int(step))
        for name, value in metrics.items():
            self.values.setdefault(name, []).append(np.asarray(value, dtype=np.float64).tolist())

    def array(self, name: str) -> np.ndarray:
        """The curve ``name`` as an array ``(n_points, R)``.

        Parameters
        ----------
        name : str

        Returns
        -------
        ndarray, shape (n_points, R), float64
        """
        return np.asarray(self.values[name], dtype=np.float64)

    def to_dict(self) -> dict:
        """JSON-able ``{"steps": steps, name: values, ...}``.

        Returns
        -------
        dict
        """
        return {"steps": list(self.steps), **{k: v for k, v in self.values.items()}}

    @classmethod
    def from_dict(cls, data: dict) -> "Curves":
        """The inverse of :meth:`to_dict`.

        Parameters
        ----------
        data : dict

        Returns
        -------
        Curves
        """
        data = dict(data)
        return cls(steps=[int(s) for s in data.pop("steps")], values=data)


#: the comparisons :func:`first_crossing` accepts, by their operator
CROSSINGS: dict[str, Callable] = {">=": np.greater_equal, ">": np.greater, "<=": np.less_equal, "<": np.less}


def first_crossing(steps: Sequence[int] | np.ndarray, values, threshold: float, compare: str = ">=") -> list[int | None]:
    """Per replica, the first step whose value compares to ``threshold`` as ``compare`` says.

    Parameters
    ----------
    steps : sequence of int, length n_points
        The evaluation steps.
    values : array_like, shape (n_points, R)
        One curve per replica (as :meth:`Curves.array`), compared in its own dtype.
    threshold : float
    compare : {">=", ">", "<=", "<"}
        ``values compare threshold`` marks a step as crossed; NaN never crosses.

    Returns
    -------
    list of int or None
        Per replica, ``int(steps[i])`` at the first crossed ``i``, or None if none was.

    Raises
    ------
    ValueError
        If ``compare`` is not an operator above, ``values`` is not 2-D, or its length differs
        from that of ``steps``.
    """
    if compare not in CROSSINGS:
        raise ValueError(f"compare must be one of {tuple(CROSSINGS)}, got {compare!r}")
    values = np.asarray(values)
    if values.ndim != 2:
        raise ValueError(f"values must be 2-D (n_points, R), got shape {values.shape}")
    if values.shape[0] != len(steps):
        raise ValueError(f"values must have one row per step: {len(steps)} steps, got {values.shape[0]} rows")
    crossed = CROSSINGS[compare](values, threshold)
    return [int(steps[int(np.argmax(col))]) if col.any() else None for col in crossed.T]


class _NullProgress:
    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def null_progress(total: int, desc: str = "") -> _NullProgress:
    """A progress factory that shows nothing (the default for library calls).

    Parameters
    ----------
    total, desc : ignored

    Returns
    -------
    An object whose ``update(n)`` and ``close()`` do nothing.
    """
    return _NullProgress()


# ---------------------------------------------------------------------------------------------
# checkpoints


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: damaged, of another config, or of other shapes."""


class StopTraining(Exception):
    """Raised by a :func:`fit` hook to end training after the current step."""


def _checksum(arrays: dict[str, np.ndarray], meta_text: str) -> str:
    h = hashlib.sha256(meta_text.encode("utf-8"))
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


class Checkpointer:
    """Saves and restores a training run as one ``.npz`` file, written atomically.

    Parameters
    ----------
    path : path-like
    header : dict
        JSON-able identity of the run (config, seed, version); a differing checkpoint is refused.
    state : callable
        ``state() -> (arrays, meta)``: arrays (parameters, moments) and JSON-able metadata.
    restore : callable
        ``restore(arrays, meta)`` puts them back; :func:`copy_checked` refuses another shape.
    every : int
        Save every ``every`` steps (a multiple of ``eval_every``).
    restart_hint : str
        What the user should do to start over, quoted in every :class:`CheckpointError`.

    Raises
    ------
    ValueError
        If ``every`` is not a positive integer.
    """

    VERSION = 2

    def __init__(self, path, *, header: dict, state: Callable, restore: Callable, every: int,
                 restart_hint: str = "delete the checkpoint file to start over"):
        every = positive_int(every, "every")
        self.path, self.every, self.restart_hint = Path(path), int(every), restart_hint
        self.header = json.loads(json.dumps(header))
        self.state, self.restore = state, restore

    def _fail(self, reason: str) -> CheckpointError:
        return CheckpointError(f"checkpoint {self.path} {reason}; {self.restart_hint}")

    def save(self, step: int, curves: Curves) -> None:
        """Save ``state()``, ``step`` and the curves so far, with a checksum.

        Parameters
        ----------
        step : int
        curves : Curves
        """
        arrays, meta = self.state()
        payload = {"version": self.VERSION, "header": self.header, "step": int(step),
                   "curves": curves.to_dict(), "meta": meta}
        meta_text = json.dumps(payload, sort_keys=True)
        arrays = {f"a_{name}": np.asarray(a) for name, a in arrays.items()}
        buf = io.BytesIO()
        np.savez(buf, payload=np.array(meta_text), checksum=np.array(_checksum(arrays, meta_text)), **arrays)
        atomic_write_bytes(self.path, buf.getvalue())

    def load(self) -> tuple[int, Curves] | None:
        """Restore the saved state; CheckpointError if the file cannot be used.

        Returns
        -------
        (step, curves) : (int, Curves), or None if there is no file
        """
        try:  # read_regular names a FIFO or device here (as its ``reason``), never reads it
            with np.load(io.BytesIO(read_regular(self.path)), allow_pickle=False) as data:
                meta_text, checksum = str(data["payload"]), str(data["checksum"])
                arrays = {name: data[name] for name in data.files if name.startswith("a_")}
            payload = json.loads(meta_text)
        except FileNotFoundError:
            return None
        except Exception as exc:  # zip, npy and JSON readers raise many types on damaged bytes
            raise self._fail(getattr(exc, "reason", f"cannot be read ({type(exc).__name__})")) from None
        if _checksum(arrays, meta_text) != checksum:
            raise self._fail("is damaged (checksum mismatch)")
        if not isinstance(payload, dict) or payload.get("version") != self.VERSION:
            raise self._fail("has another format version")
        if payload.get("header") != self.header:
            raise self._fail("belongs to another config, seed or version")
        try:
            self.restore({name[2:]: a for name, a in arrays.items()}, payload["meta"])
            return int(payload["step"]), Curves.from_dict(payload["curves"])
        except CheckpointError as exc:
            raise self._fail(str(exc)) from None
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise self._fail(f"does not fit this run ({type(exc).__name__}: {exc})") from None


def copy_checked(dst: np.ndarray, src: np.ndarray, name: str) -> None:
    """``dst[...] = src`` if shapes and dtypes agree; CheckpointError naming ``name`` otherwise.

    Parameters
    ----------
    dst, src : ndarray
    name : str
    """
    src = np.asarray(src)
    if src.shape != dst.shape or src.dtype != dst.dtype:
        raise CheckpointError(f"holds {name} of shape {src.shape} {src.dtype}, expected {dst.shape} {dst.dtype}")
    np.copyto(dst, src)


# ---------------------------------------------------------------------------------------------
# the loop


def fit(step: Callable[[int], np.ndarray], steps: int, *, eval_every: int,
        evaluate: Callable[[int], dict], hooks: Sequence[Callable[[int], None]] = (),
        checkpoint: Checkpointer | None = None, resume: bool = False,
        progress: Callable = null_progress, desc: str = "train", lr=np.nan,
        until: Callable[[Curves], bool] | None = None) -> Curves:
    """Run ``steps`` updates of all replicas, with evaluation, hooks and checkpoints.

    Parameters
    ----------
    step : callable
        ``step(i) -> (R,)`` does update ``i`` (1-based) of all replicas and returns their loss.
    steps, eval_every : int
        Number of updates and the evaluation interval; evaluation also runs at step 0 (unless
        resumed), at the last step and at a step where a hook stopped training.
    evaluate : callable
        ``evaluate(i) -> dict`` of per-replica ``(R,)`` metrics.
    hooks : sequence of callables
        ``hook(i)`` after update ``i``; raising :class:`StopTraining` ends training after it.
    checkpoint, resume : Checkpointer or None, bool
        Saved every ``checkpoint.every`` steps; with ``resume`` a saved run is continued.
    progress, desc
        ``progress(total, desc)`` returns an object with ``update(n)`` and ``close()``.
    lr : float or array, quoted in a :class:`NonFiniteLossError`
    until : callable, optional
        ``until(curves) -> bool``, asked after every evaluation; True ends training there (an
        early-stopping rule that reads only the curves, so it holds across a resume).

    Returns
    -------
    Curves
        ``train_loss`` (mean since the last evaluation, NaN at 0) and the metrics of ``evaluate``.

    Raises
    ------
    ValueError, NonFiniteLossError, CheckpointError
        For bad ``steps``/``eval_every``/``checkpoint.every``, a non-finite loss, a bad checkpoint.
    """
    steps, eval_every = positive_int(steps, "steps"), positive_int(eval_every, "eval_every")
    if checkpoint is not None and checkpoint.every % eval_every:
        raise ValueError(f"checkpoint every {checkpoint.every} steps must be a multiple of "
                         f"eval_every = {eval_every}")
    loaded = checkpoint.load() if (checkpoint is not None and resume) else None
    if loaded is not None:
        start, curves = loaded
    else:
        start, curves = 0, Curves()
        metrics = evaluate(0)
        R = len(np.atleast_1d(next(iter(metrics.values())))) if metrics else 1
        curves.record(0, train_loss=np.full(R, np.nan), **metrics)
    running: float | np.ndarray
    running, count = 0.0, 0
    bar = progress(steps, desc)
    if start:
        bar.update(start)
    try:
        for i in range(start + 1, steps + 1):
            value = np.asarray(step(i))
            if not np.all(np.isfinite(value)):
                raise NonFiniteLossError(i, lr, np.flatnonzero(~np.isfinite(value)).tolist())
            running, count = running + value, count + 1
            stop = False
            for hook in hooks:
                try:
                    hook(i)
                except StopTraining:
                    stop = True
            if i % eval_every == 0 or i == steps or stop:
                curves.record(i, train_loss=running / count, **evaluate(i))
                running, count = 0.0, 0
                stop = stop or (until is not None and i < steps and bool(until(curves)))
                if checkpoint is not None and i % checkpoint.every == 0 and i < steps and not stop:
                    checkpoint.save(i, curves)
            bar.update(1)
            if stop:
                break
    finally:
        bar.close()
    return curves


def train_step(model, params, loss, optimizer, x, target) -> np.ndarray:
    """One gradient step for all replicas at once.

    Parameters
    ----------
    model, params, loss, optimizer, x, target
        As in :func:`train`; ``x`` is a minibatch ``(R, B, ...)`` and ``target`` its targets.

    Returns
    -------
    ndarray, shape (R,): the per-replica loss
    """
    out, cache = model.forward(params, x)
    value, dout = loss(out, target)
    _, grads = model.backward(params, cache, dout, need_dx=False)
    optimizer.step(params, grads)
    return value


def train(model, params, loss, optimizer, sample: Callable, steps: int, *, eval_every: int,
          evaluate: Callable, progress: Callable = null_progress, desc: str = "train",
          step_fn: Callable | None = None, hooks: Sequence[Callable[[int], None]] = (),
          checkpoint: Checkpointer | None = None, resume: bool = False) -> Curves:
    """Train R replicas of ``model`` for ``steps`` steps on fresh minibatches (via :func:`fit`).

    Parameters
    ----------
    model, params, loss, optimizer
        A :mod:`failgeom.nn` model, its parameters (updated in place), a loss and an optimizer.
    sample : callable
        ``sample() -> (x, target)``, a fresh minibatch with the replica axis.
    evaluate : callable
        ``evaluate(params) -> dict`` of per-replica ``(R,)`` metrics on held-out samples.
    step_fn : callable, optional
        Replaces :func:`train_step` (same signature), e.g. for a non-gradient update rule.
    steps, eval_every, hooks, checkpoint, resume, progress, desc
        As in :func:`fit`.

    Returns
    -------
    Curves

    Raises
    ------
    NonFiniteLossError
        As soon as a replica's training loss is NaN or infinite (and as :func:`fit`).
    """
    step_fn = step_fn or train_step

    def step(i):
        x, target = sample()
        return step_fn(model, params, loss, optimizer, x, target)

    return fit(step, steps, eval_every=eval_every, evaluate=lambda i: evaluate(params), hooks=hooks,
               checkpoint=checkpoint, resume=resume, progress=progress, desc=desc,
               lr=getattr(optimizer, "lr", np.nan))
