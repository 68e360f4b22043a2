"""The `genfast` command line: classify, evaluate, measure and draw.

Each command's parser and code live next to what it does; this file gathers them and maps every failure to one
line on stderr and an exit code (EXIT_CODES), the same for every command.
"""
from __future__ import annotations

import argparse
import errno
import importlib
import os
import shlex
import sys
import traceback
from contextlib import contextmanager
from typing import Iterator, Sequence

from genfast.interrupts import Interrupted, interrupts_as_exceptions

# Each module defines register(subparsers), which adds its command(s) with args.func set.
COMMANDS: tuple[str, ...] = (
    "genfast.demo",
    "genfast.evaluate.cli",
    "genfast.evaluate.sweep",
    "genfast.metrics.cli",
    "genfast.plots.cli",
    "genfast.distort.cli",
    "genfast.explanation",
)

EXIT_CODES: tuple[tuple[int, str], ...] = (
    (0, "success"),
    (1, "internal error (a bug: rerun with --debug and report the traceback)"),
    (2, "bad arguments or input: an unknown option or value, a missing or malformed input, a run refused because "
        "its journal was written with other settings"),
    (3, "a file or folder could not be read or written: permissions, a read-only or full disk, a file where a "
        "folder is needed (the message names the path)"),
    (4, "a run on several ranks (torchrun) stopped because another rank failed or did not answer in time (the "
        "message names the rank); finished images are journalled: run the same command again"),
    (130, "interrupted by Ctrl-C (SIGINT); `genfast evaluate` keeps every finished image: run it again"),
    (143, "terminated by SIGTERM; as for 130"),
)
EXIT_HELP = "exit codes:\n" + "\n".join(f"  {code:<4} {text}" for code, text in EXIT_CODES) + (
    "\nErrors are one line on stderr; --debug (or GENFAST_DEBUG=1) also prints the Python traceback.")
DEBUG_ENV = "GENFAST_DEBUG"
MESSAGE_LIMIT = 2000  # characters of an error message shown without --debug

_OS_ADVICE: dict[int, str] = {
    errno.EACCES: "check its permissions or choose another path",
    errno.EPERM: "check its permissions or choose another path",
    errno.EROFS: "choose a location on a writable disk",
    errno.ENOSPC: "free some space or write to another disk, then run the command again",
    errno.EDQUOT: "free some space or write to another disk, then run the command again",
    errno.ENOTDIR: "a part of this path is a file, not a folder: choose another path",
    errno.EISDIR: "a file name is needed here, not a folder",
    errno.EEXIST: "a file is in the way where a folder is needed: move it or choose another path",
    errno.ENOENT: "check that it exists",
}


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line (and exit code 2)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="genfast", description=__doc__.splitlines()[0], epilog=EXIT_HELP,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--debug", action="store_true", help=f"print the traceback of an error (or {DEBUG_ENV}=1)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        importlib.import_module(name).register(sub)
    for command in sub.choices.values():  # every command documents the exit codes and takes --debug
        command.epilog = f"{command.epilog}\n\n{EXIT_HELP}" if command.epilog else EXIT_HELP
        command.formatter_class = argparse.RawDescriptionHelpFormatter
        command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                             help="print the traceback of an error")
    return parser


def positive_int(text: str) -> int:
    """An argparse type: a positive integer (a count such as --limit or --audit)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def names_list(text: str) -> tuple[str, ...]:
    """An argparse type: a comma-separated list of names (classes, datasets)."""
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    if not names:
        raise argparse.ArgumentTypeError(f"expected a comma-separated list of names, got {text!r}")
    return names


def model_option(text: str) -> tuple[str, object]:
    """An argparse type: NAME=VALUE, the value read as a Python literal where it is one (a number, True, None, a
    tuple)."""
    import ast

    name, sep, value = text.partition("=")
    if not sep or not name.strip().isidentifier():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE (an adapter option), got {text!r}")
    try:
        return name.strip(), ast.literal_eval(value.strip())
    except (ValueError, SyntaxError):
        return name.strip(), value.strip()


@contextmanager
def naming(path: str | os.PathLike[str]) -> Iterator[None]:
    """Give an OSError raised inside that names no file (a failed write, a full disk) `path` as its file name,
    so that the error line says which output failed."""
    try:
        yield
    except OSError as exc:
        if exc.filename is not None or exc.errno is None:
            raise
        raise type(exc)(exc.errno, exc.strerror, os.fspath(path)) from exc


def describe_error(exc: BaseException) -> tuple[int, str]:
    """The exit code and the one-line message for an exception that ended a command."""
    from genfast.distributed import RankError

    if isinstance(exc, RankError):
        return 4, str(exc)
    if isinstance(exc, Interrupted):
        return exc.exit_code, str(exc)
    if isinstance(exc, KeyboardInterrupt):
        return 130, "interrupted by SIGINT"
    if isinstance(exc, OSError) and exc.errno is not None:
        path = exc.filename if exc.filename2 is None else f"{exc.filename} -> {exc.filename2}"
        advice = _OS_ADVICE.get(exc.errno)
        where = f"cannot use {path}: " if path is not None else ""
        return 3, f"error: {where}{exc.strerror or exc}" + (f"; {advice}" if advice else "")
    if isinstance(exc, (ValueError, TypeError, OSError)):  # an OSError without errno is genfast's own message
        return 2, f"error: {exc}"
    return 1, f"internal error: {type(exc).__name__}: {exc} (rerun with --debug for the traceback)"


def _one_line(message: str) -> str:
    line = " ".join(message.split())
    if len(line) > MESSAGE_LIMIT:
        line = f"{line[:MESSAGE_LIMIT]}... ({len(line) - MESSAGE_LIMIT:,} more characters; --debug shows all)"
    return line


def _rank_label() -> str:
    """" (rank R of W)" in a process torchrun started, so that each rank's error line says whose it is."""
    world = os.environ.get("WORLD_SIZE", "1")
    return f" (rank {os.environ.get('RANK', '?')} of {world})" if world not in ("", "0", "1") else ""


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns its exit code (EXIT_CODES), with every failure reported as one line."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command = "genfast"
    debug = os.environ.get(DEBUG_ENV, "") not in ("", "0")
    try:  # the handlers come first: building the parser imports torch, which takes seconds
        with interrupts_as_exceptions():
            try:
                args = build_parser().parse_args(argv)
            except SystemExit as exc:  # --help, or a usage error already printed
                return int(exc.code or 0)
            args.command_line = shlex.join(["genfast", *argv])
            command = f"genfast {args.command}"
            debug = debug or args.debug
            return int(args.func(args) or 0)
    except (Exception, KeyboardInterrupt) as exc:
        if debug:
            traceback.print_exc()
        code, message = describe_error(exc)
        if command == "genfast" and isinstance(exc, Interrupted):
            message = f"{message} while starting up; nothing was done"
        print(f"{command}{_rank_label()}: {_one_line(message)}", file=sys.stderr)
        return code


if __name__ == "__main__":
    sys.exit(main())
