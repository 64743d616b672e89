"""Offering MFA codes to STS: ask the human, retry a rejected code, keep one STS never judged.

One :class:`CodeAsker` per MFA device. GetSessionToken (the MFA session) and AssumeRole signed
with the long-term keys (a role longer than the 1-hour chaining cap) both take their codes from
it, so a code typed for one call and never judged by STS (the call failed on the way) is offered
to the next call instead of asking again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

from ._clock import Clock
from ._events import report_mfa_requested
from ._log import logger
from ._mfa import ask_for_code, normalise_code
from ._models import MfaCallback, MfaRequest
from ._sts import CodeRejected
from .exceptions import MfaError, StsUnavailableError

if TYPE_CHECKING:
    from ._engine import ProviderStats

__all__ = ["CODE_REUSE_SECONDS", "CodeAsker"]


#: A code STS never saw (the call failed before STS could judge it) is offered again for this
#: long after it was typed, instead of asking the human again. TOTP codes live 30 s.
CODE_REUSE_SECONDS = 30.0

T = TypeVar("T")


class CodeAsker:
    """Up to ``attempts`` codes per call: a rejected or malformed answer asks again, anything
    else ends the call. A code whose call failed before STS judged it is held (with the time it
    was typed) and offered first next time."""

    def __init__(
        self,
        *,
        serial: str,
        callback: MfaCallback,
        attempts: int,
        timeout: float | None,
        clock: Clock,
        profile: str | None = None,
    ) -> None:
        self.serial = serial
        self.profile = profile
        self._callback = callback
        self._attempts = attempts
        self._timeout = timeout
        self._clock = clock
        self._held: tuple[str, float] | None = None

    def _take_held(self) -> tuple[str, float] | None:
        held, self._held = self._held, None
        if held is not None and self._clock() - held[1] < CODE_REUSE_SECONDS:
            return held
        return None

    async def run(
        self,
        call: Callable[[str], Awaitable[T]],
        *,
        duration: int,
        stats: ProviderStats,
        role_arn: str | None = None,
        on_unjudged: Callable[[], None] | None = None,
    ) -> T:
        """``call(code)`` with codes from the human until STS accepts one.

        ``call`` raises :class:`CodeRejected` for a refused code; :class:`StsUnavailableError`
        means STS never judged it: the code is held, ``on_unjudged`` runs, and the error
        propagates (the engine backs off).
        """
        reason = "initial"
        rejected = malformed = 0
        for attempt in range(1, self._attempts + 1):
            held = self._take_held()
            code, typed_at = held if held is not None else (None, self._clock())
            if code is None:
                request = MfaRequest(
                    serial_number=self.serial,
                    attempt=attempt,
                    max_attempts=self._attempts,
                    duration_seconds=duration,
                    reason=reason,
                    role_arn=role_arn,
                    profile=self.profile,
                )
                stats.prompts += 1
                report_mfa_requested()
                logger.info(
                    "Asking for an MFA code for %s%s (attempt %d/%d, %s).",
                    self.serial,
                    f" to assume {role_arn}" if role_arn else "",
                    attempt,
                    self._attempts,
                    reason,
                )
                answer = await ask_for_code(self._callback, request, self._timeout)
                code = normalise_code(answer, request)
                if code is None:
                    malformed += 1
                    reason = "malformed"
                    logger.info(  # the person is asked again: they see it
                        "The MFA answer for %s was not a six-digit code (attempt %d/%d).",
                        self.serial,
                        attempt,
                        self._attempts,
                    )
                    continue
                logger.debug("MFA code received for %s.", self.serial)
            try:
                return await call(code)
            except CodeRejected:
                rejected += 1
                reason = "rejected"
                logger.info(  # the person is asked again: they see it
                    "STS rejected the MFA code for %s (attempt %d/%d).",
                    self.serial,
                    attempt,
                    self._attempts,
                )
                continue
            except StsUnavailableError:
                # STS never judged this code: keep it for the next try instead of asking again.
                self._held = (code, typed_at)
                if on_unjudged is not None:
                    on_unjudged()
                raise
        raise _no_code_accepted(self.serial, self._attempts, rejected, malformed)


def _no_code_accepted(serial: str, attempts: int, rejected: int, malformed: int) -> MfaError:
    """The final MfaError, with the advice that fits what went wrong."""
    advice = []
    if rejected:
        advice.append(
            "STS rejected the codes: check the device's clock and that mfa_serial names the "
            "device the codes come from, and type a code only once (a used code is refused)"
        )
    if malformed:
        advice.append(
            "the answers were not six-digit codes: make the callback return the code the "
            "authenticator shows (spaces are ignored)"
        )
    return MfaError(
        f"No MFA code was accepted for {serial} in {attempts} attempt(s) ({rejected} rejected "
        f"by STS, {malformed} not six digits).",
        hint=f"{'; '.join(advice)}. Then retry (refresh()).",
        topic="mfa.rejected" if rejected else "mfa.malformed",
        serial=serial,
    )
