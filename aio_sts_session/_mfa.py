"""Calling the user's MFA callback: async or sync, with a timeout, and checking the answer."""

from __future__ import annotations

import asyncio
import functools
import inspect
import re
from typing import Any

from ._models import MfaCallback, MfaRequest
from .exceptions import MfaError

__all__ = ["ask_for_code", "is_async_callable", "is_well_formed_code"]

_CODE = re.compile(r"[0-9]{6}")


def is_well_formed_code(value: object) -> bool:
    """Exactly six ASCII digits, as a ``str``."""
    return isinstance(value, str) and _CODE.fullmatch(value) is not None


def is_async_callable(func: object) -> bool:
    while isinstance(func, functools.partial):
        func = func.func
    return inspect.iscoroutinefunction(func) or inspect.iscoroutinefunction(
        getattr(func, "__call__", None)  # noqa: B004 - callable objects with async __call__
    )


async def _call(callback: MfaCallback, request: MfaRequest) -> Any:
    try:
        if is_async_callable(callback):
            result: Any = callback(request)
        else:
            # A plain function may block (input(), a dialog): keep it off the event loop.
            result = await asyncio.to_thread(callback, request)
        if inspect.isawaitable(result):
            result = await result
    except Exception as exc:
        raise MfaError(
            f"The MFA callback raised {type(exc).__name__} while asked for a code for "
            f"{request.serial_number}; see the chained exception, fix the callback, then retry."
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
            f"The MFA callback gave no code for {request.serial_number} within {timeout:g} s; "
            "answer the prompt sooner or raise mfa_timeout."
        ) from exc
