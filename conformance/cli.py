"""``me162-check``: grade an IEC 62056-21 reader against the virtual meter and real captures.

    me162-check --reader DECLARATION [--group G] [--case ID] [--speed N] [--seed S] [--bundle DIR]
    me162-check --list
    me162-check compare BUNDLE BUNDLE... [--html FILE]

Prints a verdict table.  Exit codes: 0 every judged case passed; 1 a case failed; 2 a bad
declaration or option; 3 nothing could be judged (the reader cannot start, a dependency is
missing, or every case was inconclusive or not applicable): a CI job is never green when
nothing ran.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

from me162.conformance.groups import GROUPS
from me162.protocol.cliargs import OneLineParser, add_verbosity, log_level, number, whole
from me162.protocol.errors import Me162Error
from me162.protocol.version import __version__


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(
        prog="me162-check",
        description="Grade an IEC 62056-21 meter reader against the virtual meter and real captures.",
        epilog="readers side by side: me162-check compare BUNDLE BUNDLE... [--html FILE]. "
        "exit codes: 0 every judged case passed; 1 a case failed; 2 bad declaration or option; "
        "3 nothing could be judged (the reader cannot start, a dependency is missing); "
        "130 interrupted (Ctrl-C: the reader under test is killed)",
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    p.add_argument(
        "--reader",
        help="the reader's declaration: a TOML file, or the name of one shipped with me162 (--list-readers)",
    )
    p.add_argument("--group", action="append", help=f"run only this group (repeatable): {', '.join(GROUPS)}")
    p.add_argument("--case", action="append", help="run only this case (repeatable), e.g. FRAME-01")
    p.add_argument(
        "--speed",
        type=number(low=0.0, high=1000.0, low_open=True),
        default=20.0,
        help="time scale (default 20; 1 = real time); a case in which the reader slips just outside a window runs again at a quarter of it",
    )
    p.add_argument(
        "--seed", type=whole(low=0, high=2**63 - 1), default=0, help="seed of the virtual meters (default 0)"
    )
    p.add_argument(
        "-j",
        "--jobs",
        default="auto",
        help="runs at once, each in a process of its own; cases with the same setup share a run "
        "(default auto: two per CPU; 1: one at a time)",
    )
    p.add_argument(
        "--bundle", type=Path, help="write the results bundle (reports, JUnit, captures, hashes) here"
    )
    p.add_argument("--list", action="store_true", help="list the cases with their purpose and exit")
    p.add_argument(
        "--list-readers", action="store_true", help="list the shipped reader declarations and exit"
    )
    p.add_argument(
        "--show-reader",
        metavar="NAME",
        help="print a shipped declaration (a commented start for your own) and exit",
    )
    add_verbosity(p, verbose_help="log what the suite does")
    return p


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except KeyboardInterrupt:
        print("me162-check: stopped by SIGINT (the reader under test was killed)", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `me162-check --list | head`: not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def compare_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="me162-check compare",
        description="Several readers' results bundles side by side, case by case (Markdown on stdout).",
        epilog="exit codes: 0 compared; 2 a directory is not a results bundle",
    )
    p.add_argument("bundles", nargs="+", type=Path, metavar="BUNDLE", help="a directory written by --bundle")
    p.add_argument("--html", type=Path, metavar="FILE", help="also write the comparison as an HTML page")
    return p


def _compare(argv: list[str]) -> int:
    from me162.conformance.report import compare

    args = compare_parser().parse_args(argv)
    try:
        markdown, page = compare(args.bundles)
    except Me162Error as e:
        print(f"me162-check compare: {e}", file=sys.stderr)
        return 2
    sys.stdout.write(markdown)
    if args.html is not None:
        args.html.write_text(page, encoding="utf-8")
        print(f"written: {args.html}", file=sys.stderr)
    return 0


def _main(argv: list[str] | None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["compare"]:
        return _compare(argv[1:])
    args = build_parser().parse_args(argv)
    # the catalogue, the simulator and the report load once the options are understood
    from me162.conformance.cases import Case, catalogue
    from me162.conformance.declaration import load_declaration
    from me162.conformance.report import write_bundle
    from me162.conformance.run import auto_jobs, run_suite, select
    from me162.conformance.suite import Result, Verdict

    logging.basicConfig(
        level=log_level(args, default=logging.ERROR, verbose=logging.INFO),
        format="%(message)s",
        stream=sys.stderr,
    )
    if args.list:
        cases = catalogue()
        width = max(len(c.id) for c in cases)
        for c in cases:
            print(f"{c.id:{width}}  {c.title}: {c.purpose}")
        return 0
    if args.list_readers:
        from me162.conformance.declaration import shipped

        for name, path in shipped().items():
            decl = load_declaration(path)
            print(f"{name:16} {decl.name}  ({path})")
        return 0
    if args.show_reader is not None:
        from me162.conformance.declaration import find_declaration

        try:
            sys.stdout.write(find_declaration(args.show_reader).read_text(encoding="utf-8"))
        except Me162Error as e:
            print(f"me162-check: {e}", file=sys.stderr)
            return 2
        return 0
    if args.reader is None:
        print(
            "me162-check: --reader DECLARATION is required: a TOML file that says how to run your reader "
            "(`me162-check --show-reader me162-read` prints one to start from), or a shipped one by name "
            "(--list-readers)",
            file=sys.stderr,
        )
        return 2
    if args.bundle is not None and args.bundle.exists() and not args.bundle.is_dir():
        print(
            f"me162-check: --bundle {args.bundle}: not a folder (a bundle is a folder of files)",
            file=sys.stderr,
        )
        return 2
    if args.jobs == "auto":
        jobs = auto_jobs()
    elif args.jobs.isdigit() and int(args.jobs) >= 1:
        jobs = int(args.jobs)
    else:
        print(
            f"me162-check: --jobs must be 'auto' or a whole number >= 1, not {args.jobs!r}", file=sys.stderr
        )
        return 2
    try:
        decl = load_declaration(args.reader)
        cases = select(catalogue(), groups=args.group, ids=args.case)
    except Me162Error as e:
        print(f"me162-check: {e}", file=sys.stderr)
        return 2
    pace = f"{args.speed:g}x speed" if decl.scales_time else "real time (the reader takes no {speed})"
    print(
        f"grading {decl.name} on {len(cases)} case(s) at {pace} (seed {args.seed}, {jobs} at once)",
        file=sys.stderr,
    )
    start = time.monotonic()

    width = max((len(c.id) for c in cases), default=11)

    def show(case: Case, r: Result) -> None:
        print(f"{r.case_id:{width}} {r.verdict.value:14} {r.reason}", flush=True)
        if r.retimed:
            print(f"{'':{width}} {'':14} ({r.retimed})", flush=True)

    results = run_suite(
        decl, cases, speed=args.speed, seed=args.seed, bundle=args.bundle, progress=show, jobs=jobs
    )
    elapsed = time.monotonic() - start
    counts = {v: sum(1 for r in results if r.verdict is v) for v in Verdict}
    print(
        f"\n{counts[Verdict.PASS]} passed, {counts[Verdict.FAIL]} failed, {counts[Verdict.INCONCLUSIVE]} inconclusive, "
        f"{counts[Verdict.NOT_APPLICABLE]} not applicable in {elapsed:.1f} s"
    )
    if args.bundle is not None:
        write_bundle(args.bundle, decl, cases, results, speed=args.speed, seed=args.seed, seconds=elapsed)
        print(f"results bundle: {args.bundle}", file=sys.stderr)
    if counts[Verdict.FAIL]:
        return 1
    if not counts[Verdict.PASS]:
        reasons = sorted({r.reason for r in results if r.verdict is Verdict.INCONCLUSIVE})
        why = reasons[0] if len(reasons) == 1 else "every case was inconclusive or not applicable"
        print(f"me162-check: nothing could be judged: {why}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
