"""The ``aio_sts_session`` logger, with a :class:`logging.NullHandler`: a library's records go
where the application's logging configuration sends them, and nowhere (no "last resort" lines
on stderr) when it has none. Every module that logs takes the logger from here, so the handler
is in place before the first record; the command line's warm path, which logs nothing, imports
neither this nor :mod:`logging`."""

from __future__ import annotations

import logging

__all__ = ["logger"]

logger = logging.getLogger("aio_sts_session")
if not any(isinstance(handler, logging.NullHandler) for handler in logger.handlers):
    logger.addHandler(logging.NullHandler())
