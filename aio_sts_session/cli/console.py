"""The ``aio-sts-session`` console script: the warm path (:mod:`.warm`) when it can answer,
else the full command line (:mod:`.main`), imported only then."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from . import warm

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    output = warm.answer(args)
    if output is not None:
        sys.stdout.write(output)
        sys.stdout.flush()
        return 0
    from .main import main as full_path

    return full_path(args)
