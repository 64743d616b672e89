"""MkDocs hook: the command-line reference, generated from the parser at build time."""

from __future__ import annotations

import argparse
import os
import re
from typing import Any

PLACEHOLDER = "<!-- cli-reference -->"


def _subcommands(parser: argparse.ArgumentParser) -> list[tuple[str, argparse.ArgumentParser]]:
    found: list[tuple[str, argparse.ArgumentParser]] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            seen: set[int] = set()
            for name, sub in action.choices.items():
                if id(sub) in seen:  # an alias (list for status)
                    continue
                seen.add(id(sub))
                found.append((name, sub))
                found.extend((f"{name} {n}", s) for n, s in _subcommands(sub))
    return found


def cli_reference() -> str:
    saved = dict(os.environ)
    os.environ.update(
        {
            "HOME": "/home/you",
            "XDG_CACHE_HOME": "/home/you/.cache",
            "XDG_CONFIG_HOME": "/home/you/.config",
            "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring",
            "COLUMNS": "100",
        }
    )
    os.environ.pop("AIO_STS_SESSION_CACHE_KEY", None)
    try:
        from aio_sts_session.cli.main import build_parser
        from aio_sts_session.cli.options import PROG

        parser = build_parser()
        parts = ["## aio-sts-session", "", "```text", parser.format_help().rstrip(), "```", ""]
        for name, sub in _subcommands(parser):
            parts += [f"## {PROG} {name}", "", "```text", sub.format_help().rstrip(), "```", ""]
        return "\n".join(parts)
    finally:
        os.environ.clear()
        os.environ.update(saved)


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    if PLACEHOLDER in markdown:
        return markdown.replace(PLACEHOLDER, cli_reference())
    return markdown


#: Sphinx roles in the docstrings (":class:`X`"), which Markdown shows as they are: the code
#: span stays, the role goes.
ROLE = re.compile(r":(?:class|meth|func|data|mod|attr|exc|obj):(?=<code>)")


def on_page_content(html: str, **kwargs: Any) -> str:
    return ROLE.sub("", html)
