"""The ``aio-sts-session`` console script: the warm path (:mod:`._warm`) when it can answer,
else the full command line (:mod:`._cli`), imported only then."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from . import _warm

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    output = _warm.answer(args)
    if output is not None:
        sys.stdout.write(output)
        sys.stdout.flush()
        return 0
    from ._cli import main as full_path

    return full_path(args)
