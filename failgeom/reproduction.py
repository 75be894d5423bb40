"""``failgeom reproduce``: every experiment and ``failgeom verify`` as cells on one executor, then the report.

:func:`make_plan` checks the arguments and builds each experiment's config before anything runs;
:func:`reproduce` gives each experiment a :class:`~failgeom.runner.Job` in ``DIR/<name>/``,
sends ``failgeom verify`` in groups of rows (by failure family) to the same executor as the
cells, and hands the outcomes to :func:`failgeom.report.write_report`. A reproduction started
again reuses every complete result and every stored cell, so an interrupted one resumes where
it stopped.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from .executors import Task
from .results import DEFAULT_OUT, check_writable
from .runner import Job, error_line, run_jobs
from .store import FolderLock
from .validation import integer

PRESETS = ("quick", "paper")


@dataclass
class Plan:
    preset: str
    out: Path
    seed: int
    jobs: int
    experiments: list  # Experiment specs, in registry order
    configs: dict  # name -> ExperimentConfig
    outcomes: dict = field(default_factory=dict)
    scheduler: str | None = None
    executor: str = ""


def make_plan(preset: str = "quick", out=DEFAULT_OUT, only=None, jobs: int | None = None, seed: int = 0,
              configs=None, scheduler: str | None = None) -> Plan:
    """Check every argument and build the configs; raise ValueError/TypeError on bad input.

    ``configs`` is ``{name: config}`` or ``f(experiment, preset) -> config`` (default
    ``experiment.config(preset)``); ``jobs`` defaults to the usable cores. The output folder is
    checked last, so a typo in another argument leaves the disk untouched.
    """
    from .experiments import get, names
    from .runtime import usable_cores

    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {', '.join(PRESETS)}, got {preset!r}")
    jobs = usable_cores() if jobs is None else integer(jobs, "--jobs", 1, 4096)
    integer(seed, "--seed", 0, 2**63 - 1)
    selected = list(dict.fromkeys(only)) if only else names()
    experiments = [get(name) for name in selected]  # unknown names raise ValueError here
    order = names()
    experiments.sort(key=lambda e: order.index(e.name))
    built = {}
    for e in experiments:
        if callable(configs):
            built[e.name] = configs(e, preset)
        elif configs is not None and e.name in configs:
            built[e.name] = configs[e.name].validate()
        else:
            built[e.name] = e.config(preset)
    if isinstance(out, str) and not out.strip():
        raise ValueError("--out must name a folder, got an empty string")
    out = check_writable(Path(out))
    return Plan(preset, out, seed, jobs, experiments, built, scheduler=scheduler)


def verify_task(arg):
    """``(index, row)`` of one group of ``failgeom verify`` rows: ``(quick, ("family", ids))``
    runs the checks whose id starts with one of ``ids``, ``(quick, ("rest", ids))`` those whose
    id starts with none, ``(quick, f)`` calls a custom ``f(quick) -> rows``."""
    quick, what = arg
    if callable(what):
        return [(i, row) for i, row in enumerate(what(quick))]
    from . import verify

    kind, prefixes = what
    order = {c.id: i for i, c in enumerate(verify.CHECKS)}
    ids = [c.id for c in verify.CHECKS if c.id.startswith(prefixes) == (kind == "family")]
    return [(order[row.id], row) for cid in ids for row in verify.run_checks(quick=quick, only=cid)
            if row.id == cid]


def reproduce(preset: str = "quick", out=DEFAULT_OUT, only=None, jobs: int | None = None, seed: int = 0,
              quiet: bool = False, progress=None, *, configs=None, verify=True, scheduler=None,
              executor=None) -> int:
    """Run the experiments and ``failgeom verify`` as cells, then write the report.

    Parameters
    ----------
    preset, out, only, jobs, seed, configs, scheduler
        See :func:`make_plan` and :func:`run_jobs`; bad values raise before anything runs.
    quiet : bool
        No messages on stderr and no final line on stdout.
    progress : callable, optional
        Progress factory (see :func:`run_jobs`).
    verify : bool or callable
        Run the verify rows of the selected families (quick checks for the quick preset), skip
        them (False), or ``verify(quick) -> rows`` (picklable, run on the executor).
    executor : optional
        A ready executor of :mod:`failgeom.executors` to run the cells and the verify rows on
        (``jobs`` and ``scheduler`` then do not choose the workers); default: one made from them.

    Returns
    -------
    int
        0 when every experiment produced a result, 1 when one failed (its section says why).
        A FAIL row of ``verify`` is reported, not turned into an exit status.
    """
    from . import report

    start = time.perf_counter()
    plan = make_plan(preset, out, only, jobs, seed, configs, scheduler)
    say = None if quiet else (lambda msg: print(msg, file=sys.stderr, flush=True))
    quick = preset == "quick"
    prefixes = report.VERIFY_PREFIXES  # family -> the ids (or id prefixes) of its verify rows
    families = sorted({e.family for e in plan.experiments})
    groups = []
    if callable(verify):
        groups = [verify]
    elif verify:  # one task per family (the checks of a family run one after another)
        groups = [("family", tuple(prefixes[f])) for f in families if prefixes.get(f)]
        if not only:
            groups.append(("rest", tuple(p for ps in prefixes.values() for p in ps)))
    extra = [Task(f"verify-{i}", verify_task, (quick, g)) for i, g in enumerate(groups)]
    rows, errors = [], []

    def collect(key, ok, value):
        if ok:
            rows.extend(value)
        else:
            errors.append(error_line(value))

    jobs_ = [Job(e, plan.configs[e.name], plan.out / e.name, seed, preset, True) for e in plan.experiments]
    with FolderLock(plan.out):
        stats = run_jobs(jobs_, workers=plan.jobs, scheduler=scheduler, executor=executor, progress=progress,
                         say=say, extra=extra, on_extra=collect)
        plan.outcomes = {job.name: job.outcome for job in jobs_}
        plan.jobs, plan.executor = stats.workers, stats.executor
        ordered = sorted(rows, key=lambda r: r[0])  # verify's order; a check in two families once
        verify_rows = list({row.id: row for _, row in ordered}.values()) if groups else None
        if callable(verify):
            verify_rows = [row for _, row in ordered]
        verify_seconds = sum(getattr(r, "seconds", 0.0) for r in verify_rows or [])
        total = time.perf_counter() - start
        report.write_report(plan, verify_rows, "; ".join(errors), verify_seconds, total)
    failed = [n for n, o in plan.outcomes.items() if o.status == "failed"]
    if not quiet:
        if failed:
            print(f"FAILED: {', '.join(failed)} (see the report)")
        passes = "not run" if verify_rows is None else f"{sum(r.passed for r in verify_rows)}/{len(verify_rows)} PASS"
        print(f"{stats.line()}; verify {passes}; report: {plan.out / 'report.md'} and report.html "
              f"({time.perf_counter() - start:.0f} s, {stats.executor})")
    return 1 if failed else 0


__all__ = ["PRESETS", "Plan", "make_plan", "reproduce", "verify_task"]
