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
import difflib
import os
import re
import shutil
import sys
import textwrap
from pathlib import Path
from typing import Any, cast

from .runtime import configure

# one BLAS thread (before NumPy loads) and a malloc that keeps freed memory: see failgeom.runtime;
# parallelism comes from worker processes, one per core, not from BLAS threads
configure()

from . import __version__  # noqa: E402
from .store import RunError  # noqa: E402

EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED, EXIT_BROKEN_PIPE = 1, 2, 130, 141
MAX_SEEDS, MAX_JOBS, MAX_SEED = 10_000, 4096, 2**63 - 1


class UsageError(ValueError):
    """Bad command-line input: printed as one line, exit status 2."""


WIDTH = 100  # list, show and --help fit this many columns (fewer on a narrower terminal)

DESCRIPTION = (
    'Reproduce "Failures of Gradient-Based Deep Learning" (Shalev-Shwartz, Shamir, Shammah, ICML '
    "2017) in NumPy: run its experiments, check its theorems, and write a report of what reproduces.")

# (command and arguments, what it does): the --help overview and each subcommand's help
COMMANDS = {
    "list": ("list", "the experiments, grouped by failure family"),
    "show": ("show NAME", "an experiment's config fields: paper and quick values, range, meaning"),
    "run": ("run NAME", "run one experiment (or a grid of configs): result.json and figure.png"),
    "reproduce": ("reproduce", "every experiment and verify: report.md and report.html"),
    "verify": ("verify", "check every theorem and lemma numerically, one row per check"),
}

EXAMPLES = [
    ("failgeom list", ""),
    ("failgeom show parity", "parity's settings"),
    ("failgeom run parity", "the quick preset, about a minute"),
    ("failgeom run parity --set steps=6000 --seeds 8", "a custom run"),
    ("failgeom reproduce", "the whole paper (quick preset) and its report"),
    ("failgeom verify --quick", "the theorems, in about 15 s"),
]

EPILOG = """\
'failgeom COMMAND --help' lists a command's options. Bad input gets one line on stderr and exit
status 2; a failed write, a diverged run or a damaged checkpoint gets one line and exit status 1."""


def _fill(text: str) -> str:
    return "\n".join(_wrap(text, width()))


def _overview() -> str:
    """The top-level --help text above the options: what failgeom does, its commands, examples."""
    lines = [_fill(DESCRIPTION), "", "commands:"]
    lines += [f"  {usage:<12}{text}" for usage, text in COMMANDS.values()]
    lines += ["", "examples:"]
    lines += [f"  {cmd:<50}{text}".rstrip() for cmd, text in EXAMPLES]
    return "\n".join(lines)


def width() -> int:
    """Columns for text output: 100, or the terminal's width if narrower (at least 60)."""
    return max(60, min(WIDTH, shutil.get_terminal_size((WIDTH, 24)).columns))


class _Formatter(argparse.RawDescriptionHelpFormatter):
    def __init__(self, prog):
        super().__init__(prog, width=width(), max_help_position=32)


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)

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


def _out_folder(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("expected a folder, got an empty path")
    return text


def _experiment(name: str):
    """The registered experiment ``name``; a misspelt name gets the closest ones as a hint."""
    from .experiments import get, names

    known = names()
    if name not in known:
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
        if close:
            hint = "did you mean " + " or ".join(repr(c) for c in close) + "?"
        else:
            hint = "known: " + ", ".join(known)
        raise UsageError(f"unknown experiment {name!r} ({hint})")
    return get(name)


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
                    bar_format="[{n_fmt}/{total_fmt}] {desc} |{bar:20}| {elapsed} elapsed{postfix}")

    cast(Any, factory).overall = overall
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


def _rows(cells: list[list[str]], widths: list[int], indent: int = 2) -> list[str]:
    """Lines of one table row: each cell is a list of lines already wrapped to its column's width;
    columns are two spaces apart and the last one is not padded. A first cell wider than its
    column (a plugin's long name) gets a line of its own, the rest of the row below it."""
    lines = []
    if len(cells[0][0]) > widths[0]:
        lines.append(" " * indent + cells[0][0])
        cells = [cells[0][1:] or [""]] + cells[1:]
    height = max(len(c) for c in cells)
    for i in range(height):
        parts = [(c[i] if i < len(c) else "").ljust(w) for c, w in zip(cells[:-1], widths)]
        last = cells[-1][i] if i < len(cells[-1]) else ""
        lines.append((" " * indent + "  ".join(parts + [last])).rstrip())
    return lines


_GLUE = re.compile(r"\b(Sec\.|Fig\.|Figs\.|Thm|Theorem|Lemma|Appendix|d =|k =|n =) (?=\S)")
_INTERVAL = re.compile(r"([\[(][-+\w.]+), ([-+\w.]+[\])])")


def _wrap(text: str, width: int) -> list[str]:
    """Words wrapped to ``width``; "Sec. 2.1", "Fig. 6", "d = 30", "[1, 10000]" and the like stay
    on one line."""
    glued = _GLUE.sub(lambda m: m.group(1).replace(" ", "\0") + "\0", text)
    glued = _INTERVAL.sub("\\1,\0\\2", glued)
    return [ln.replace("\0", " ") for ln in textwrap.wrap(glued, width, break_on_hyphens=False)] or [""]


def _wrap_value(text: str, width: int) -> list[str]:
    """A config value wrapped after its commas (lists such as ``1.0,1.5,2.0``), else on spaces."""
    items = text.split(",")
    lines, line = [], items[0]
    for i, item in enumerate(items[1:], 2):
        comma = 1 if i < len(items) else 0  # a line that is not the value's last ends with ","
        if len(line) + 1 + len(item) + comma > width:
            lines.append(line + ",")
            line = item
        else:
            line += "," + item
    lines.append(line)
    return [chunk for ln in lines for chunk in (_wrap(ln, width) if len(ln) > width else [ln])]


def cmd_list(args) -> int:
    from .claims import FAMILY_TITLES
    from .experiments import get, names

    experiments = [get(n) for n in names()]
    total = width()
    name_width = min(32, max(len(e.name) for e in experiments))  # a longer name gets its own line
    text_width = total - 2 - name_width - 2
    family = None
    for e in experiments:
        if e.family != family:
            family = e.family
            print(("\n" if e is not experiments[0] else "")
                  + f"{FAMILY_TITLES.get(family, f'Family {family}')} (failure family {family})")
        for line in _rows([[e.name], _wrap(e.description, text_width)], [name_width]):
            print(line)
    print("\n" + _fill("'failgeom show NAME' shows an experiment's settings; 'failgeom run NAME' runs it."))
    return 0


def _value(value) -> str:
    if isinstance(value, tuple):
        return ",".join(map(str, value)) if value else "(empty)"
    return "none" if value is None else str(value)


def show_rows(experiment) -> tuple[list[str], list[list[str]]]:
    """``failgeom show``'s table: the header and one row per config field, with the field's value
    in each preset (paper first), what it accepts and its meaning."""
    presets = sorted(experiment.presets, key=lambda p: (p != "paper", p != "quick", p))
    described = [type(experiment.presets[p]).describe(experiment.config(p)) for p in presets]
    rows = []
    for fields in zip(*described):
        first = fields[0]
        rows.append([first["name"], *(_value(f["value"]) for f in fields), first["accepted"], first["doc"]])
    return ["field", *presets, "accepted", "meaning"], rows


def cmd_show(args) -> int:
    experiment = _experiment(args.name)
    header, rows = show_rows(experiment)
    total, n_values = width(), len(header) - 3
    # field names in full; values up to 16 columns (lists wrap after a comma); the meaning and what
    # a field accepts share the rest
    widths = [min(24, max(len(r[0]) for r in rows + [header]))]  # a longer name gets its own line
    widths += [max(len(header[1 + i]), min(16, max(len(r[1 + i]) for r in rows))) for i in range(n_values)]
    text_width = max(24, total - 2 - sum(w + 2 for w in widths))
    print("\n".join(_wrap(f"{experiment.name}: {experiment.description}", total)))
    config_class = type(experiment.presets[header[1]]).__name__
    print("\n".join(_wrap(f"{config_class}, the {' and '.join(header[1:1 + n_values])} presets side by side. "
                         + _set_hint(experiment), total)))
    print()
    print("\n".join(_rows([[h] for h in header[:1 + n_values]] + [["meaning (accepted values)"]], widths)))
    for row in rows:
        cells = [[row[0]]] + [_wrap_value(v, w) for v, w in zip(row[1:1 + n_values], widths[1:])]
        cells.append(_wrap(f"{row[-1]} ({row[-2]})" if row[-1] else f"({row[-2]})", text_width))
        print("\n".join(_rows(cells, widths)))
    return 0


def _set_hint(experiment) -> str:
    """How to change a field, with an example when the experiment has a ``steps`` field."""
    config = experiment.config("quick")
    steps = getattr(config, "steps", None)
    if isinstance(steps, int) and steps >= 2:
        return (f"Change a field with --set FIELD=VALUE, e.g. failgeom run {experiment.name} "
                f"--set steps={steps // 2}.")
    return f"Change a field with failgeom run {experiment.name} --set FIELD=VALUE."


def _custom(experiment, preset: str, config) -> tuple[str, str]:
    """The run's label (``preset``, or "custom" when the config differs from the preset's) and the
    changed fields as text (``steps=6000, replicas=8``; empty for the preset itself)."""
    base = experiment.config(preset)
    changed = [f"{row['name']}={_value(row['value'])}"
               for row, was in zip(type(config).describe(config), type(base).describe(base))
               if row["value"] != was["value"]]
    return ("custom" if changed else preset), ", ".join(changed)


def cmd_run(args) -> int:
    from . import runner
    from .experiments import with_overrides
    from .results import atomic_write_text, check_writable

    experiment = _experiment(args.name)
    base = _config(experiment, args.preset, args.seeds, args.dtype, args.set)
    grid = runner.parse_grid(args.grid)
    root = Path(args.out) / experiment.name
    plot = not args.no_plot
    points = runner.grid_points(grid) if grid else []
    configs = [with_overrides(base, p, experiment.name) for p in points] if points else [base]
    # a config that is not the preset's is labelled "custom", here and in result.json
    labels = [_custom(experiment, args.preset, c) for c in configs]
    if points:
        jobs = [runner.Job(experiment, c, root / runner.grid_label(p), args.seed, label, plot,
                           name=f"{experiment.name} {runner.grid_label(p)}")
                for c, p, (label, _) in zip(configs, points, labels)]
    else:
        jobs = [runner.Job(experiment, base, root, args.seed, labels[0][0], plot)]
    check_writable(root)
    stats = runner.run_jobs(jobs, workers=args.jobs, scheduler=args.scheduler,
                            progress=progress_factory(args.quiet), say=_say(args.quiet), say_failures=False)
    failed = [job for job in jobs if job.outcome.status == "failed"]
    if points:
        table = runner.grid_table(jobs, points, experiment.summary)
        fixed = _custom(experiment, args.preset, base)[1]
        title = f"custom, from the {args.preset} preset" + (f" with {fixed}" if fixed else "")
        atomic_write_text(root / "grid.md", f"# {experiment.name} grid ({title})\n\n{table}")
    if not args.quiet:
        if points:
            print(table, end="")
        for job, (label, changed) in zip(jobs, labels):
            if job.outcome.result is not None and not points:
                how = f"custom, from the {args.preset} preset: {changed}" if label == "custom" else label
                print(f"{job.name} ({how}): {experiment.summary(job.outcome.result)}")
        where = root / "grid.md" if points else root / "result.json"
        if len(failed) == len(jobs):
            done = "nothing written"
        elif all(job.outcome.status == "skipped" for job in jobs):
            done = f"reused {root / 'result.json'}" if not points else f"reused every point; wrote {where}"
        else:
            done = f"wrote {where}"
        print(f"{stats.line()} {stats.executor}; {done}")
    for job in failed:
        print(f"failgeom: {job.outcome.error}", file=sys.stderr)
    return EXIT_FAILED if failed else 0


def cmd_reproduce(args) -> int:
    from . import reproduction

    for name in args.only or []:
        _experiment(name)

    return reproduction.reproduce(args.preset, Path(args.out), args.only, args.jobs, args.seed, args.quiet,
                            progress_factory(args.quiet), scheduler=args.scheduler,
                            configs=lambda experiment, preset: _config(experiment, preset, None, None, []))


def cmd_verify(args, rest) -> int:
    from . import verify

    return verify.run_cli(args)


PRESET_HELP = "quick: minutes, the paper's trends; paper: the paper's own sizes, hours (default: quick)"
QUIET_HELP = "print only errors (default: a progress bar on a terminal, then the outcome)"


def _executor_options(p) -> None:
    p.add_argument("--jobs", type=_int_in(1, MAX_JOBS), default=None, metavar="N",
                   help="worker processes (default: every usable core)")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="run the cells on a Dask cluster: a scheduler address, or 'local' for a "
                        "cluster on this machine (default: $DASK_SCHEDULER_ADDRESS if set, else "
                        "local processes)")


def _out_option(p, what: str) -> None:
    p.add_argument("--out", type=_out_folder, default="failgeom-results", metavar="DIR",
                   help=f"{what} (default: failgeom-results)")


def build_parser(with_verify: bool = False) -> argparse.ArgumentParser:
    """The parser; ``with_verify`` adds verify's own options (importing verify takes seconds)."""
    parser = _Parser(prog="failgeom", usage="failgeom [-h] [--version] COMMAND ...", description=_overview(),
                     epilog=EPILOG)
    parser.add_argument("--version", action="version", version=f"failgeom {__version__}",
                        help="print failgeom's version and exit")
    # the commands are listed in the description above; argparse's own list is hidden
    sub = parser.add_subparsers(dest="command", parser_class=_Parser, metavar="COMMAND", help=argparse.SUPPRESS)

    sub.add_parser("list", prog="failgeom list", help=COMMANDS["list"][1],
                   description=_fill("List the experiments, grouped by failure family, with what each shows."))

    show = sub.add_parser("show", prog="failgeom show", help=COMMANDS["show"][1],
                          description=_fill("Print an experiment's config fields: the value in the paper and "
                                      "quick presets, what each field accepts and what it means."))
    show.add_argument("name", metavar="NAME", help="an experiment (see 'failgeom list')")

    run = sub.add_parser(
        "run", prog="failgeom run", help=COMMANDS["run"][1],
        description=_fill("Run one experiment and write DIR/NAME/result.json and figure.png. Cells "
                          "already stored for the same config and seed are reused, so an interrupted "
                          "run continues where it stopped. A run whose config differs from its preset "
                          "(--set, --grid, --seeds, --dtype) is labelled custom."),
        epilog="examples:\n"
               "  failgeom run parity\n"
               "  failgeom run parity --preset paper --jobs 2\n"
               "  failgeom run parity --seeds 8 --set dims=5,10,20 --set steps=30000 --out results\n"
               "  failgeom run parity --grid dims=5,10,20,40 --grid lr=0.01,0.03")
    run.add_argument("name", metavar="NAME", help="an experiment (see 'failgeom list')")
    run.add_argument("--preset", default="quick", choices=["quick", "paper"], help=PRESET_HELP)
    run.add_argument("--seeds", type=_int_in(1, MAX_SEEDS), default=None, metavar="N",
                     help="replicas (seeds) trained at once (default: the preset's replicas field)")
    run.add_argument("--seed", type=_int_in(0, MAX_SEED), default=0, metavar="S",
                     help="base seed; every random stream derives from it (default: 0)")
    run.add_argument("--set", action="append", metavar="KEY=VALUE",
                     help="change a config field, e.g. steps=6000 or dims=5,10; repeatable, and "
                          "'failgeom show NAME' lists the fields (default: the preset's values)")
    run.add_argument("--grid", action="append", metavar="KEY=V1,V2",
                     help="sweep a config field (repeatable: every combination), one folder per "
                          "point and a summary table grid.md (default: no sweep)")
    _out_option(run, "output folder; the result goes to DIR/NAME")
    run.add_argument("--no-plot", action="store_true",
                     help="do not draw figure.png (default: draw it)")
    run.add_argument("--quiet", action="store_true", help=QUIET_HELP)
    run.add_argument("--dtype", choices=["float32", "float64"], default=None,
                     help="float type of parameters and data (default: the preset's, float32 for most)")
    _executor_options(run)

    rep = sub.add_parser(
        "reproduce", prog="failgeom reproduce", help=COMMANDS["reproduce"][1],
        description=_fill("Run every experiment and failgeom verify, and write DIR/report.md and a "
                    "self-contained DIR/report.html with each claim's verdict, plus one folder per "
                    "experiment. Stored cells and results are reused, so an interrupted reproduction "
                    "continues where it stopped."))
    rep.add_argument("--preset", default="quick", choices=["quick", "paper"], help=PRESET_HELP)
    rep.add_argument("--only", nargs="+", metavar="NAME",
                     help="only these experiments, and the checks of their families (default: all)")
    rep.add_argument("--seed", type=_int_in(0, MAX_SEED), default=0, metavar="S",
                     help="base seed of every experiment (default: 0)")
    _out_option(rep, "output folder for the report and the results")
    rep.add_argument("--quiet", action="store_true", help=QUIET_HELP)
    _executor_options(rep)

    ver = sub.add_parser("verify", prog="failgeom verify", help=COMMANDS["verify"][1],
                         description=_fill("Check every theorem and lemma of the paper numerically, one row "
                                     "per check."))
    if with_verify:
        from . import verify

        verify.add_arguments(ver)
    return parser


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = build_parser(with_verify=argv[:1] == ["verify"])
        args, rest = parser.parse_known_args(argv)
        if rest:
            raise UsageError(f"unrecognized arguments: {' '.join(rest)}")
        if args.command is None:
            parser.print_usage(sys.stderr)
            print("failgeom: error: a command is required; 'failgeom --help' describes them", file=sys.stderr)
            return EXIT_BAD_INPUT
        if args.command == "verify":
            return cmd_verify(args, rest)
        return {"list": cmd_list, "show": cmd_show, "run": cmd_run, "reproduce": cmd_reproduce}[args.command](args)
    except (UsageError, ValueError, TypeError) as exc:
        print(f"failgeom: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except BrokenPipeError:  # the reader went away (failgeom list | head): stop quietly, as a shell does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return EXIT_BROKEN_PIPE
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
