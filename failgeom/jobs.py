"""Jobs: one experiment at one config and seed, written to one folder, and what became of it.

:class:`Job` is what :func:`failgeom.runner.run_jobs` takes (:func:`check_jobs` holds a list of
them to what is accepted, naming the argument that is not), :class:`JobOutcome` what happened to
one, :class:`RunStats` the counts of a run. :func:`reusable` decides whether an earlier complete
result in a job's folder is exactly this job's. After a merge fails on outputs read from stored
records, :func:`to_recompute` chooses which of them to compute again, round by round.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, cast

from .results import Result
from .store import CellStore, config_json, load_result

if TYPE_CHECKING:
    from .experiments.base import Experiment, ExperimentConfig


@dataclass
class JobOutcome:
    """What happened to one job: ``status`` is "ran", "skipped" (an earlier complete result was
    reused) or "failed" (``error`` says why); ``reason`` says why an earlier result was not reused."""

    name: str
    status: str = "pending"
    result: Result | None = None
    error: str = ""
    reason: str = ""
    cells_run: int = 0
    cells_reused: int = 0
    cells_failed: int = 0


@dataclass
class Job:
    """An experiment at one config and seed, written to ``folder`` (result.json, figure.png)."""

    experiment: Experiment
    config: ExperimentConfig
    folder: Path
    seed: int = 0
    preset: str = "custom"
    plot: bool = True
    name: str = ""
    outcome: JobOutcome = cast("JobOutcome", None)  # set by the runner
    # filled while running
    store: CellStore = cast("CellStore", None)
    keys: list = field(default_factory=list)
    outputs: dict = field(default_factory=dict)
    times: dict = field(default_factory=dict)  # key -> {"wall_s", "cpu_s"}
    reused: set = field(default_factory=set)  # keys whose output came from a stored record
    # after a merge failed on stored outputs: rounds of recomputing them, the stored text of each
    # recomputed cell, and whether one came out exactly as stored (the records were sound)
    rounds: int = 0
    stored: dict = field(default_factory=dict)
    confirmed: bool = False

    def __post_init__(self):
        self.folder = Path(self.folder)
        self.name = self.name or getattr(self.experiment, "name", "")
        self.outcome = self.outcome or JobOutcome(self.name)


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


@dataclass
class RunStats:
    cells_run: int = 0
    cells_reused: int = 0
    cells_failed: int = 0
    results_reused: int = 0
    executor: str = ""
    workers: int = 1
    seconds: float = 0.0

    def line(self) -> str:
        text = f"{plural(self.cells_run, 'cell')} run, {self.cells_reused} reused, {self.cells_failed} failed"
        if self.results_reused:
            text += f" ({plural(self.results_reused, 'complete result')} reused)"
        return text


def reusable(folder, config, preset: str, seed: int, need_figure: bool = True,
             experiment: str | None = None) -> tuple[Result | None, str]:
    """An earlier complete result in ``folder`` for the same experiment, config, preset, seed and
    version (``experiment``, a name, is compared when given).

    Returns ``(result, "")`` when it can be reused, ``(None, reason)`` otherwise.
    """
    from . import __version__

    result, reason = load_result(folder, need_figure, experiment)
    if result is None:
        return None, reason
    if result.preset != preset:
        return None, f"made with preset {result.preset!r}"
    if result.seeds.get("seed") != seed:
        return None, f"made with seed {result.seeds.get('seed')!r}"
    want = config_json(config)
    if result.config != want:
        changed = sorted(k for k in set(result.config) | set(want) if result.config.get(k) != want.get(k))
        return None, f"config changed ({', '.join(changed)})"
    if result.environment.get("failgeom") != __version__:
        return None, f"made by failgeom {result.environment.get('failgeom')!r}"
    return result, ""


def check_jobs(jobs, workers) -> list:
    """Check ``run_jobs``' arguments: TypeError/ValueError naming the one that is wrong."""
    from .validation import integer

    if workers is not None:
        integer(workers, "workers", 1, 4096)
    if isinstance(jobs, (str, bytes)) or not hasattr(jobs, "__iter__"):
        raise TypeError(f"jobs must be a list of runner.Job, got {type(jobs).__name__}")
    jobs = list(jobs)
    for i, job in enumerate(jobs):
        if not isinstance(job, Job):
            raise TypeError(f"jobs[{i}] must be a runner.Job, got {type(job).__name__}")
        e = job.experiment
        if not all(hasattr(e, a) for a in ("name", "presets", "cell_keys", "compute_cell", "merge_cells")):
            raise TypeError(f"jobs[{i}].experiment must be an experiment spec (failgeom.experiments.get(name)), "
                            f"got {type(e).__name__}")
        kinds = {type(c) for c in e.presets.values()}
        if type(job.config) not in kinds:
            want = " or ".join(sorted(k.__name__ for k in kinds))
            raise TypeError(f"jobs[{i}].config must be a {want} (experiment {e.name!r}), got "
                            f"{type(job.config).__name__}")
        job.config.validate()
        integer(job.seed, f"jobs[{i}].seed", 0, 2**63 - 1)
    folders = [job.folder for job in jobs]
    if len(set(folders)) != len(folders):
        raise ValueError("two jobs write the same folder")
    return jobs


def _shape(value):
    """The structure of a JSON value: dict keys with their values' structure, "list", "num", ..."""
    if isinstance(value, dict):
        return tuple(sorted((k, _shape(v)) for k, v in value.items()))
    if isinstance(value, list):
        return "list"
    if isinstance(value, bool) or not isinstance(value, (int, float)) and value is not None:
        return type(value).__name__
    return "num"


def _odd_ones(job: Job, keys) -> list:
    """The cells among ``keys`` whose output is not shaped like most of the job's outputs."""
    from collections import Counter

    shapes = {k: _shape(job.outputs[k]) for k in job.keys}
    (common, count), = Counter(shapes.values()).most_common(1)
    return [k for k in keys if shapes[k] != common] if count > 1 else []


def to_recompute(job: Job) -> list:
    """The stored cells to compute again after a merge failed: first those shaped unlike their
    siblings, else the quickest one as a probe; then, unless a recomputed cell gave exactly its
    stored output (the records were sound: the merge itself fails), all the others."""
    reused = [k for k in job.keys if k in job.reused]
    if not reused or job.confirmed or job.rounds >= 2:
        return []
    job.rounds += 1
    if job.rounds == 1:
        return _odd_ones(job, reused) or [min(reused, key=lambda k: job.times[k]["wall_s"])]
    return reused


__all__ = ["Job", "JobOutcome", "RunStats", "check_jobs", "plural", "reusable", "to_recompute"]
