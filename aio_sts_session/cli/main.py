"""The ``aio-sts-session`` command's full path: the parser (each command module adds its own
part), the dispatch, and how the process ends.

Errors are one line on stderr and a non-zero exit status (2 for a command line that cannot
work), in the command line's own words (:mod:`.advice`), never a traceback and never a secret
(``AIO_STS_SESSION_DEBUG=1`` shows the traceback). ``credential-process`` and ``env`` are
answered by :mod:`.warm` when the cache can; :mod:`.console` decides.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence

from .._log import logger
from .._text import quote
from .._version import __version__
from ..exceptions import StsSessionError
from . import cache, credentials, keys, login, status, warm, wrap
from . import exec as exec_command
from .advice import AdviceFormatter, UsageError, describe, one_line
from .options import PROG, epilog
from .server import ChildStartError

__all__ = ["build_parser", "main"]


#: The command modules, in the order ``--help`` lists them; each has ``register(commands)``,
#: which adds its parser and sets ``run`` to its handler.
COMMANDS = (credentials, exec_command, login, wrap, status, keys, cache)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="MFA-backed AWS credentials from one shared, encrypted cache and one prompt.",
        epilog=epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens (INFO)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.register(commands)
    return parser


Outcome = tuple[list[str], dict[str, str]] | int


def _innermost(
    parser: argparse.ArgumentParser, args: argparse.Namespace
) -> argparse.ArgumentParser:
    """The sub-command's parser ``args`` came from (``cache clear``'s for ``cache clear``)."""
    for action in parser._actions:  # argparse keeps its sub-parsers nowhere public
        if isinstance(action, argparse._SubParsersAction):
            chosen = getattr(args, action.dest, None)
            if chosen in action.choices:
                return _innermost(action.choices[chosen], args)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    restore_core_dumps = warm.no_core_dumps()
    parser = build_parser()
    if "_ARGCOMPLETE" in os.environ:  # the shell asks for completions (argcomplete)
        import argcomplete

        argcomplete.autocomplete(parser)
    args, extras = parser.parse_known_args(argv)
    if extras:  # the usage of the command the typo is in, not the top-level one
        _innermost(parser, args).error(f"unrecognized arguments: {' '.join(extras)}")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(AdviceFormatter(f"{PROG}: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO if args.verbose else logging.WARNING)
    logger.propagate = False
    debug = os.environ.get("AIO_STS_SESSION_DEBUG") == "1"
    try:
        outcome: Outcome = asyncio.run(args.run(args))
    except UsageError as exc:
        sys.stderr.write(f"{PROG}: error: {describe(exc)}\n")
        return 2
    except ChildStartError as exc:
        sys.stderr.write(f"{PROG}: error: {describe(exc)}\n")
        return exc.status
    except StsSessionError as exc:
        if debug:
            raise
        sys.stderr.write(f"{PROG}: error: {describe(exc)}\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write(f"{PROG}: interrupted\n")
        return 130
    except Exception as exc:
        if debug:
            raise
        sys.stderr.write(
            f"{PROG}: error: unexpected {type(exc).__name__}: {one_line(exc)} (set "
            "AIO_STS_SESSION_DEBUG=1 for a traceback)\n"
        )
        return 1
    if isinstance(outcome, int):
        return outcome
    command, env = outcome  # plain exec: replace this process with the command
    sys.stdout.flush()
    restore_core_dumps()  # the command's own limit; it holds no long-term key
    try:
        os.execvpe(command[0], command, env)
    except OSError as exc:
        sys.stderr.write(f"{PROG}: error: cannot run {quote(command[0])}: {exc.strerror}\n")
        return 127 if isinstance(exc, FileNotFoundError) else 126
    return 0  # pragma: no cover - execvpe does not return
