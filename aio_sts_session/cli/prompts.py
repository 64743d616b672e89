"""Who asks a person for the MFA code, on the command line: ``--mfa-command``, else the
profile's ``mfa_process``, else ``--prompt`` (or ``AIO_STS_SESSION_PROMPT``), else the
controlling terminal, else a desktop dialog when there is a display, else an error saying how
to provide a code."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable

from .._callbacks import (
    DIALOGS,
    HOW_TO_PROVIDE_A_CODE,
    CommandCallback,
    DialogPrompt,
    TerminalPrompt,
)
from .._log import logger
from .._models import MfaCallback, MfaRequest
from .._text import quote
from ..exceptions import ConfigurationError, MfaError
from .advice import UsageError

__all__ = ["DIALOG_TIMEOUT", "ENV_PROMPT", "PROMPTS", "callback_factory", "no_code_source"]

#: The prompt driver, as ``--prompt``.
ENV_PROMPT = "AIO_STS_SESSION_PROMPT"
PROMPTS = ("terminal", *DIALOGS, "command")
#: A dialog waits this long for a person unless --mfa-timeout says otherwise.
DIALOG_TIMEOUT = 120.0
#: An MFA command gets this long unless --mfa-timeout says otherwise.
COMMAND_TIMEOUT = 60.0


def _chosen_prompt(args: argparse.Namespace) -> str | None:
    chosen: str | None = getattr(args, "prompt", None)
    if chosen is None:
        chosen = os.environ.get(ENV_PROMPT) or None
        if chosen is not None and chosen not in PROMPTS:
            raise UsageError(
                f"{ENV_PROMPT}={quote(chosen)} is not a prompt: use one of {', '.join(PROMPTS)}."
            )
    return chosen


def callback_factory(args: argparse.Namespace) -> Callable[[str | None], MfaCallback]:
    """``pick(mfa_process)``: the callback for a profile whose ``mfa_process`` is that, in the
    order of the module's docstring. Contradicting options are refused now, before anything
    else happens."""
    chosen = _chosen_prompt(args)
    if chosen not in (None, "command") and args.mfa_command:
        raise UsageError(f"--prompt {chosen} and --mfa-command disagree: give one of them.")

    def pick(mfa_process: str | None) -> MfaCallback:
        command_timeout = args.mfa_timeout or COMMAND_TIMEOUT
        if chosen in (None, "command"):
            if args.mfa_command:
                return _command_callback(args.mfa_command, command_timeout, "--mfa-command")
            if mfa_process:
                return _command_callback(mfa_process, command_timeout, "mfa_process")
            if chosen == "command":
                raise UsageError(
                    "--prompt command needs a command: --mfa-command CMD, or mfa_process in "
                    "the profile."
                )
        if chosen == "terminal":
            return TerminalPrompt()
        if chosen in DIALOGS:
            if not DialogPrompt.usable(chosen):
                raise UsageError(
                    f"--prompt {chosen}: {DIALOGS[chosen]} is not on PATH or there is no "
                    "display (DISPLAY or WAYLAND_DISPLAY)."
                )
            return DialogPrompt(chosen, timeout=args.mfa_timeout or DIALOG_TIMEOUT)
        prompt = TerminalPrompt()
        if prompt.available():
            return prompt
        for dialog in DIALOGS:
            if DialogPrompt.usable(dialog):
                return DialogPrompt(dialog, timeout=args.mfa_timeout or DIALOG_TIMEOUT)
        return no_code_source

    return pick


def _command_callback(command: str, timeout: float, setting: str) -> MfaCallback:
    try:
        callback = CommandCallback(command, timeout=timeout)
    except ConfigurationError as exc:
        raise ConfigurationError(f"{setting}: {exc}") from None
    return _Announcing(callback)


class _Announcing:
    """A command is asked again without anyone seeing why (a terminal prompt and a dialog say
    "STS rejected the last one" themselves): say it on stderr, as it happens."""

    def __init__(self, callback: CommandCallback) -> None:
        self.callback = callback

    def __repr__(self) -> str:
        return repr(self.callback)

    async def __call__(self, request: MfaRequest) -> str:
        if request.reason != "initial":
            what = "STS rejected the last code" if request.reason == "rejected" else (
                "the last answer was not a six-digit code"
            )  # fmt: skip
            logger.warning(
                "%s; asking the MFA command again (attempt %d/%d).",
                what,
                request.attempt,
                request.max_attempts,
            )
        return await self.callback(request)


async def no_code_source(request: MfaRequest) -> str:
    """The callback when nobody can be asked: an error saying how to provide a code."""
    raise MfaError(
        f"An MFA code is needed for {request.serial_number}, but there is no terminal, no "
        f"display for a dialog and no MFA command: {HOW_TO_PROVIDE_A_CODE}."
    )
