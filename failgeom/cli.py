"""The ``failgeom`` command: list, run, reproduce, verify.

Bad input (unknown experiment, bad ``--set``, non-positive sizes, unwritable output folder) gets
one line on stderr and exit status 2; nothing already on disk is touched before the run has
succeeded, and results are written atomically.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .runtime import configure

# one BLAS thread (before NumPy loads) and a malloc that keeps freed memory: see failgeom.runtime;
# `reproduce --jobs N` runs experiments in parallel processes instead of BLAS threads
configure()

import numpy as np  # noqa: E402

from . import __version__  # noqa: E402

EXIT_BAD_INPUT = 2


class UsageError(ValueError):
    """Bad command-line input: printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2, no usage dump
        raise UsageError(message)


def _progress_factory(quiet: bool):
    """tqdm bars on stderr, silent with --quiet or when stderr is not a terminal."""
    if quiet or not sys.stderr.isatty():
        from .training import null_progress

        return null_progress
    from tqdm.auto import tqdm

    def factory(total, desc=""):
        return tqdm(total=total, desc=desc, file=sys.stderr, leave=False, mininterval=0.5)

    return factory


def _parse_sets(pairs) -> dict[str, str]:
    out = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--set expects key=value, got {pair!r}")
        out[key.strip()] = value.strip()
    return out


def _config(experiment, preset: str, seeds, dtype, sets):
    from .experiments import with_overrides

    config = experiment.config(preset)
    overrides = _parse_sets(sets)
    if seeds is not None:
        overrides["replicas"] = str(seeds)
    if dtype is not None:
        overrides["dtype"] = dtype
    return with_overrides(config, overrides, experiment.name)


def _summary(experiment, result) -> str:
    return f"{result.experiment} ({result.preset}): {experiment.summary(result)}"


def run_experiment(experiment, config, seed: int, out: Path, preset: str, plot: bool, progress,
                   resume: bool = False) -> Path:
    """Run one experiment and write ``out/<name>/result.json`` (and ``figure.png``)."""
    from .results import atomic_savefig, check_writable

    folder = check_writable(out / experiment.name)
    start = time.perf_counter()
    extra = {}
    if experiment.resumable:
        extra = {"checkpoint_dir": folder / "checkpoint", "resume": resume}
    elif resume:
        raise UsageError(f"{experiment.name} does not checkpoint; run it without --resume")
    # a diverging run ends in one NonFiniteLossError line, not a stream of overflow warnings
    with np.errstate(over="ignore", invalid="ignore"):
        result = experiment.run(config, seed, progress, preset=preset, **extra)
    result.timing["wall_s"] = time.perf_counter() - start
    if plot:
        from . import plotting

        fig = experiment.figure(result)
        atomic_savefig(fig, folder / "figure.png")
        plotting.close(fig)
    result.save(folder)
    return folder


def cmd_list(args) -> int:
    from .experiments import get, names

    for name in names():
        e = get(name)
        print(f"{name:<28} {e.description}")
    return 0


def cmd_run(args) -> int:
    from .experiments import get

    experiment = get(args.name)
    config = _config(experiment, args.preset, args.seeds, args.dtype, args.set)
    folder = run_experiment(experiment, config, args.seed, Path(args.out), args.preset,
                            not args.no_plot, _progress_factory(args.quiet), args.resume)
    if not args.quiet:
        from .results import Result

        print(_summary(experiment, Result.load(folder)))
        print(f"wrote {folder / 'result.json'}" + ("" if args.no_plot else f" and {folder / 'figure.png'}"))
    return 0


def cmd_reproduce(args) -> int:
    """Every experiment (or ``--only``) and ``failgeom verify``, then ``report.md``/``.html``."""
    from . import report

    return report.reproduce(args.preset, Path(args.out), args.only, args.jobs, args.seed, args.quiet,
                            _progress_factory(args.quiet),
                            configs=lambda experiment, preset: _config(experiment, preset, None, None, []))


def cmd_verify(args, rest) -> int:
    try:
        from . import verify
    except ImportError:
        raise UsageError("failgeom verify is not available in this build") from None
    return verify.main(rest)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="failgeom", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"failgeom {__version__}")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)

    sub.add_parser("list", help="list the registered experiments")

    run = sub.add_parser("run", help="run one experiment")
    run.add_argument("name")
    run.add_argument("--preset", default="quick", choices=["quick", "paper"])
    run.add_argument("--seeds", type=int, default=None, help="number of seeds (replicas)")
    run.add_argument("--seed", type=int, default=0, help="base seed (default 0)")
    run.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config field")
    run.add_argument("--out", default="failgeom-results", help="output folder")
    run.add_argument("--no-plot", action="store_true")
    run.add_argument("--quiet", action="store_true")
    run.add_argument("--dtype", choices=["float32", "float64"], default=None)
    run.add_argument("--resume", action="store_true", help="continue a checkpointed run")

    rep = sub.add_parser("reproduce", help="run every experiment and verify; write report.md/.html")
    rep.add_argument("--preset", default="quick", choices=["quick", "paper"])
    rep.add_argument("--only", nargs="+", metavar="NAME")
    rep.add_argument("--seed", type=int, default=0)
    rep.add_argument("--out", default="failgeom-results")
    rep.add_argument("--quiet", action="store_true")
    rep.add_argument("--jobs", type=int, default=1, metavar="N", help="experiments run in N processes")

    sub.add_parser("verify", help="check every theorem and lemma numerically", add_help=False)
    return parser


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv[:1] == ["verify"]:
            return cmd_verify(None, argv[1:])
        parser = build_parser()
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return EXIT_BAD_INPUT
        if getattr(args, "seed", 0) < 0:
            raise UsageError(f"--seed must be a non-negative integer, got {args.seed}")
        return {"list": cmd_list, "run": cmd_run, "reproduce": cmd_reproduce}[args.command](args)
    except (UsageError, ValueError, TypeError) as exc:
        print(f"failgeom: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except FloatingPointError as exc:  # NonFiniteLossError: a run that diverged
        print(f"failgeom: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("failgeom: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
