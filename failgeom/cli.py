"""The ``failgeom`` command, thin: parses the arguments and calls the runner, verify or the report.

``list``, ``show NAME``, ``run NAME``, ``reproduce``, ``verify``. Bad input (unknown experiment,
bad ``--set`` or ``--grid``, out-of-range sizes, a file where the output folder goes) gets one line on
stderr and exit status 2 before anything is written. A failed write (no space, permissions, a
read-only file system) gets one line naming the path and the system's reason and exit status 1,
as does a run that diverged, a damaged checkpoint or an output folder another run is writing;
everything written before stays valid.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .runtime import configure

# one BLAS thread (before NumPy loads) and a malloc that keeps freed memory: see failgeom.runtime;
# parallelism comes from worker processes, one per core, not from BLAS threads
configure()

from . import __version__  # noqa: E402
from .store import RunError  # noqa: E402

EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 1, 2, 130
MAX_SEEDS, MAX_JOBS, MAX_SEED = 10_000, 4096, 2**63 - 1


class UsageError(ValueError):
    """Bad command-line input: printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2, no usage dump
        raise UsageError(message)


def _int_in(low: int, high: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"expected an integer from {low} to {high}, got {value}")
        return value

    return parse


def progress_factory(quiet: bool):
    """tqdm bars on stderr (one over all cells, ``[3/17] tuple-lines k=3 decomposition``, plus
    bars inside cells run in this process); silent with --quiet or when stderr is no terminal."""
    from .training import null_progress

    if quiet or not sys.stderr.isatty():
        return null_progress
    from tqdm.auto import tqdm

    def factory(total, desc=""):
        return tqdm(total=total, desc=desc, file=sys.stderr, leave=False, mininterval=0.5)

    def overall(total):
        return tqdm(total=total, file=sys.stderr, mininterval=0.5, dynamic_ncols=True,
                    bar_format="[{n_fmt}/{total_fmt}] {desc} |{bar:20}| {elapsed}<{remaining}")

    factory.overall = overall
    return factory


def _say(quiet: bool):
    return None if quiet else (lambda msg: print(msg, file=sys.stderr, flush=True))


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


def cmd_list(args) -> int:
    from .experiments import get, names

    for name in names():
        print(f"{name:<30} {get(name).description}")
    return 0


def _value(value) -> str:
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return "none" if value is None else str(value)


def cmd_show(args) -> int:
    from .experiments import get

    experiment = get(args.name)
    config = experiment.config(args.preset)
    rows = [("field", args.preset, "default", "accepted", "meaning")]
    for now, default in zip(config.describe(config), type(config).describe()):
        rows.append((now["name"], _value(now["value"]), _value(default["value"]), now["accepted"], now["doc"]))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    print(f"{experiment.name}: {experiment.description}")
    print(f"{type(config).__name__}, {args.preset} preset; set a field with --set KEY=VALUE:")
    for row in rows:
        print(("  " + "  ".join(c.ljust(w) for c, w in zip(row, widths)) + "  " + row[4]).rstrip())
    return 0


def cmd_run(args) -> int:
    from . import runner
    from .experiments import get, with_overrides
    from .results import atomic_write_text, check_writable

    experiment = get(args.name)
    base = _config(experiment, args.preset, args.seeds, args.dtype, args.set)
    grid = runner.parse_grid(args.grid)
    root = Path(args.out) / experiment.name
    plot = not args.no_plot
    points = runner.grid_points(grid) if grid else []
    if points:
        jobs = [runner.Job(experiment, with_overrides(base, p, experiment.name), root / runner.grid_label(p),
                           args.seed, args.preset, plot, name=f"{experiment.name} {runner.grid_label(p)}")
                for p in points]
    else:
        jobs = [runner.Job(experiment, base, root, args.seed, args.preset, plot)]
    check_writable(root)
    stats = runner.run_jobs(jobs, workers=args.jobs, scheduler=args.scheduler,
                            progress=progress_factory(args.quiet), say=_say(args.quiet), say_failures=False)
    failed = [job for job in jobs if job.outcome.status == "failed"]
    if points:
        table = runner.grid_table(jobs, points, experiment.summary)
        atomic_write_text(root / "grid.md", f"# {experiment.name} grid ({args.preset} preset)\n\n{table}")
    if not args.quiet:
        if points:
            print(table, end="")
        for job in jobs:
            if job.outcome.result is not None and not points:
                print(f"{job.name} ({args.preset}): {experiment.summary(job.outcome.result)}")
        where = root / "grid.md" if points else root / "result.json"
        print(f"{stats.line()} {stats.executor}; "
              + (f"wrote {where}" if len(failed) < len(jobs) else "nothing written"))
    for job in failed:
        print(f"failgeom: {job.outcome.error}", file=sys.stderr)
    return EXIT_FAILED if failed else 0


def cmd_reproduce(args) -> int:
    from . import reproduction

    return reproduction.reproduce(args.preset, Path(args.out), args.only, args.jobs, args.seed, args.quiet,
                            progress_factory(args.quiet), scheduler=args.scheduler,
                            configs=lambda experiment, preset: _config(experiment, preset, None, None, []))


def _verify_module():
    try:
        from . import verify
    except ImportError:
        raise UsageError("failgeom verify is not available in this build") from None
    return verify


def cmd_verify(args, rest) -> int:
    verify = _verify_module()
    if hasattr(verify, "run_cli"):
        return verify.run_cli(args)
    return verify.main(rest)


def _executor_options(p) -> None:
    p.add_argument("--jobs", type=_int_in(1, MAX_JOBS), default=None, metavar="N",
                   help="worker processes (default: every usable core)")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="run the cells on a Dask cluster: a scheduler address, or 'local' for a "
                        "LocalCluster on this machine (default: $DASK_SCHEDULER_ADDRESS if set)")


def build_parser(with_verify: bool = False) -> argparse.ArgumentParser:
    """The parser; ``with_verify`` adds verify's own options (importing verify takes seconds)."""
    parser = _Parser(prog="failgeom", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"failgeom {__version__}")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)

    sub.add_parser("list", help="list the registered experiments")
    show = sub.add_parser("show", help="an experiment's config: each field's meaning, value and range")
    show.add_argument("name")
    show.add_argument("--preset", default="quick", choices=["quick", "paper"])

    run = sub.add_parser("run", help="run one experiment (or a grid of configs)")
    run.add_argument("name")
    run.add_argument("--preset", default="quick", choices=["quick", "paper"])
    run.add_argument("--seeds", type=_int_in(1, MAX_SEEDS), default=None, help="number of seeds (replicas)")
    run.add_argument("--seed", type=_int_in(0, MAX_SEED), default=0, help="base seed (default 0)")
    run.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config field")
    run.add_argument("--grid", action="append", metavar="KEY=V1,V2",
                     help="sweep a config field (repeatable: every combination); one folder per point")
    run.add_argument("--out", default="failgeom-results", help="output folder")
    run.add_argument("--no-plot", action="store_true")
    run.add_argument("--quiet", action="store_true")
    run.add_argument("--dtype", choices=["float32", "float64"], default=None)
    run.add_argument("--resume", action="store_true",
                     help="continue from the stored cells and checkpoints (every run does; kept for scripts)")
    _executor_options(run)

    rep = sub.add_parser("reproduce", help="run every experiment and verify; write report.md/.html")
    rep.add_argument("--preset", default="quick", choices=["quick", "paper"])
    rep.add_argument("--only", nargs="+", metavar="NAME")
    rep.add_argument("--seed", type=_int_in(0, MAX_SEED), default=0)
    rep.add_argument("--out", default="failgeom-results")
    rep.add_argument("--quiet", action="store_true")
    _executor_options(rep)

    ver = sub.add_parser("verify", help="check every theorem and lemma numerically")
    if with_verify:
        verify = _verify_module()
        if hasattr(verify, "add_arguments"):
            verify.add_arguments(ver)
    return parser


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = build_parser(with_verify=argv[:1] == ["verify"])
        args, rest = parser.parse_known_args(argv)
        passthrough = args.command == "verify" and not hasattr(_verify_module(), "run_cli")
        if rest and not passthrough:
            raise UsageError(f"unrecognized arguments: {' '.join(rest)}")
        if args.command is None:
            parser.print_help()
            return EXIT_BAD_INPUT
        if args.command == "verify":
            return cmd_verify(args, rest)
        return {"list": cmd_list, "show": cmd_show, "run": cmd_run, "reproduce": cmd_reproduce}[args.command](args)
    except (UsageError, ValueError, TypeError) as exc:
        print(f"failgeom: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as exc:  # a write failed: nothing written before is lost
        where = f" {exc.filename}" if exc.filename else ""
        print(f"failgeom: could not write{where}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_FAILED
    except RunError as exc:  # the run stopped: a locked folder, a lost scheduler, ...
        print(f"failgeom: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("failgeom: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
