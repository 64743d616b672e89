"""Calling the user's MFA callback: async or sync, with a timeout, and checking the answer."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import inspect
import re
import threading
from typing import Any

from ._models import MfaCallback, MfaRequest
from .exceptions import MfaError

__all__ = ["ask_for_code", "is_async_callable", "is_well_formed_code", "normalise_code"]

_CODE = re.compile(r"[0-9]{6}")


def is_well_formed_code(value: object) -> bool:
    """Exactly six ASCII digits, as a ``str``."""
    return isinstance(value, str) and _CODE.fullmatch(value) is not None


def normalise_code(answer: object, request: MfaRequest) -> str | None:
    """The six-digit code in an answer, or ``None`` if the answer is not one (a failed attempt:
    the user is asked again). Whitespace is ignored: ``" 123 456\\n"`` is ``"123456"``, as
    authenticator apps show and terminals return it.

    An answer that is not a ``str`` is a programming error in the callback, not a typo: it
    raises :class:`MfaError` at once instead of asking the human again.
    """
    if not isinstance(answer, str):
        raise MfaError(
            f"The MFA callback returned {type(answer).__name__}, not str, for "
            f"{request.serial_number}: return the code as text, e.g. '123456' (a leading zero "
            "would be lost in an int)."
        )
    code = "".join(answer.split())
    return code if is_well_formed_code(code) else None


def is_async_callable(func: object) -> bool:
    while isinstance(func, functools.partial):
        func = func.func
    return inspect.iscoroutinefunction(func) or inspect.iscoroutinefunction(
        getattr(func, "__call__", None)  # noqa: B004 - callable objects with async __call__
    )


def _in_daemon_thread(callback: MfaCallback, request: MfaRequest) -> asyncio.Future[Any]:
    """Run a plain callback in a daemon thread of its own: it may block (``input()``, a
    dialog), and one that is abandoned after a timeout must not keep the process from exiting
    (``asyncio.to_thread``'s executor is joined when ``asyncio.run`` ends)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Any] = loop.create_future()
    context = contextvars.copy_context()

    def settle(result: Any, error: BaseException | None) -> None:
        if future.done():  # abandoned (timeout, cancel)
            return
        if error is None:
            future.set_result(result)
        else:
            future.set_exception(error)

    def run() -> None:
        try:
            result, error = context.run(callback, request), None
        except BaseException as exc:  # handed to the waiting coroutine
            result, error = None, exc
        with contextlib.suppress(RuntimeError):  # the loop ended: nobody waits any more
            loop.call_soon_threadsafe(settle, result, error)

    threading.Thread(target=run, name="aio-sts-session-mfa", daemon=True).start()
    return future


async def _call(callback: MfaCallback, request: MfaRequest) -> Any:
    try:
        if is_async_callable(callback):
            result: Any = callback(request)
        else:
            result = await _in_daemon_thread(callback, request)
        if inspect.isawaitable(result):
            result = await result
    except MfaError:
        raise
    except Exception as exc:
        raise MfaError(
            f"The MFA callback raised {type(exc).__name__} while asked for a code for "
            f"{request.serial_number}.",
            hint="See the chained exception, fix the callback, then retry.",
            topic="mfa.callback_failed",
        ) from exc
    return result


async def ask_for_code(callback: MfaCallback, request: MfaRequest, timeout: float | None) -> object:
    """Ask the callback once. Returns whatever it answered (checked by the caller).

    Raises :class:`MfaError` (cause chained) if it raises or does not answer in ``timeout``.
    """
    if timeout is None:
        return await _call(callback, request)
    try:
        return await asyncio.wait_for(_call(callback, request), timeout)
    except asyncio.TimeoutError as exc:
        raise MfaError(
            f"No MFA code for {request.serial_number} came within {timeout:g} s.",
            hint="Answer the prompt sooner or raise mfa_timeout.",
            topic="mfa.timeout",
            seconds=f"{timeout:g}",
        ) from exc
