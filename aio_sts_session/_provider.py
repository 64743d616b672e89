"""``SessionTokenProvider``: the refresh engine fed by STS GetSessionToken with an MFA code."""

from __future__ import annotations

import asyncio
import logging
import os
from typing import TYPE_CHECKING, Any, Union

from . import _aiobotocore
from ._cache import MemoryCache, TokenCache
from ._clock import Clock, system_clock
from ._config import validate
from ._engine import Plan, ProviderStats, RefreshEngine
from ._mfa import ask_for_code, normalise_code
from ._models import CachedToken, MfaCallback, MfaRequest
from ._sts import (
    CodeRejected,
    SourceKeys,
    call_get_caller_identity,
    call_get_session_token,
    serial_account,
)
from .exceptions import ConfigurationError, MfaError, StsUnavailableError

if TYPE_CHECKING:
    import aioboto3
    from aiobotocore.session import AioSession

    SourceSession = Union[AioSession, aioboto3.Session]  # noqa: UP007

__all__ = ["ProviderStats", "SessionTokenProvider"]

logger = logging.getLogger("aio_sts_session")

#: A code STS never saw (the call failed before STS could judge it) is offered again for this
#: long after it was typed, instead of asking the human again. TOTP codes live 30 s.
CODE_REUSE_SECONDS = 30.0
#: Waiting for another process's refresh: longer than any MFA prompt it may be showing.
DEFAULT_PROMPT_BOUND = 300.0


class SessionTokenProvider(RefreshEngine):
    """Temporary credentials from STS GetSessionToken, refreshed before they expire.

    Arguments (all keyword-only; see the README's configuration table):

    - ``mfa_serial``: the MFA device's ARN (``arn:aws:iam::ACCOUNT:mfa/NAME``) or a hardware
      serial; ``None`` for GetSessionToken without MFA.
    - ``mfa_callback``: ``async def ask(request: MfaRequest) -> str`` (or a plain function, run
      in a daemon thread); required with ``mfa_serial``.
    - ``duration_seconds``: 900..129600 (default 12 h); STS may grant less and the provider
      follows.
    - ``source_session``: the session whose credentials are the long-term keys; default: the
      attached session's own chain, else the default chain.
    - ``region_name``, ``endpoint_url``: the STS endpoint (``AWS_ENDPOINT_URL_STS`` honoured).
    - ``cache``: a :class:`TokenCache`, e.g. :class:`EncryptedFileCache`; default memory.
    - ``prefetch_seconds`` (300), ``stale_seconds`` (60): the refresh windows.
    - ``mfa_attempts`` (3), ``mfa_timeout`` (none): codes per refresh, seconds per code.
    - ``sts_config``: a botocore ``Config`` merged over ours; ``clock``: wall-clock seconds.

    Construction validates every argument (:class:`ConfigurationError`) and does no I/O.
    """

    def __init__(
        self,
        *,
        mfa_serial: str | None = None,
        mfa_callback: MfaCallback | None = None,
        duration_seconds: int = 43200,
        source_session: SourceSession | None = None,
        region_name: str | None = None,
        endpoint_url: str | None = None,
        cache: TokenCache | None = None,
        prefetch_seconds: float = 300,
        stale_seconds: float = 60,
        mfa_attempts: int = 3,
        mfa_timeout: float | None = None,
        sts_config: Any | None = None,
        clock: Clock | None = None,
    ) -> None:
        endpoint_url = (
            endpoint_url
            or os.environ.get("AWS_ENDPOINT_URL_STS")
            or os.environ.get("AWS_ENDPOINT_URL")
            or None
        )
        validate(
            mfa_serial,
            mfa_callback,
            duration_seconds,
            prefetch_seconds,
            stale_seconds,
            mfa_attempts,
            mfa_timeout,
            endpoint_url,
        )
        if cache is not None and not isinstance(cache, TokenCache):
            raise ConfigurationError(
                "cache must implement TokenCache (load/store/delete/lock), e.g. "
                "EncryptedFileCache(directory, key=...)."
            )
        clock = clock or system_clock
        stats = ProviderStats()
        region = region_name or _aiobotocore.default_region(source_session)
        source = _SessionTokenSource(
            serial=mfa_serial,
            callback=mfa_callback,
            duration=duration_seconds,
            attempts=mfa_attempts,
            timeout=mfa_timeout,
            sources=_aiobotocore.SourceResolver(source_session),
            sts=_aiobotocore.StsClientFactory(
                region_name=region, endpoint_url=endpoint_url, config=sts_config
            ),
            clock=clock,
            stats=stats,
        )
        super().__init__(
            source,
            cache=cache if cache is not None else MemoryCache(),
            clock=clock,
            prefetch_seconds=prefetch_seconds,
            stale_seconds=stale_seconds,
            lock_timeout=(mfa_timeout or DEFAULT_PROMPT_BOUND) * mfa_attempts + 60.0,
            stats=stats,
        )
        self._sts = source.sts

    async def prepare(self) -> None:
        """Check what can be checked without a prompt, and warm up: find the long-term keys,
        have STS confirm them (GetCallerIdentity, which needs no permission) when an MFA code
        will be at stake, and create the STS client. Optional; call it at start-up to fail fast
        (:class:`SourceCredentialsError`) and to take this work off the first request."""
        await super().prepare()


class _SessionTokenSource:
    """GetSessionToken with an MFA code: what a :class:`SessionTokenProvider` refreshes from."""

    def __init__(
        self,
        *,
        serial: str | None,
        callback: MfaCallback | None,
        duration: int,
        attempts: int,
        timeout: float | None,
        sources: _aiobotocore.SourceResolver,
        sts: _aiobotocore.StsClientFactory,
        clock: Clock,
        stats: ProviderStats,
    ) -> None:
        self.serial = serial
        self._callback = callback
        self._duration = duration
        self._attempts = attempts
        self._timeout = timeout
        self._sources = sources
        self.sts = sts
        self._clock = clock
        self._stats = stats
        self._held_code: tuple[str, float] | None = None
        self._verified_keys: set[str] = set()
        self._verify_lock: tuple[asyncio.Lock, asyncio.AbstractEventLoop] | None = None

    def describe(self) -> str:
        return f"mfa_serial={self.serial!r}, duration_seconds={self._duration}"

    def use_attached(self, session: Any) -> None:
        self._sources.use_attached(session)

    async def close(self) -> None:
        await self.sts.close()

    async def prepare(self) -> None:
        await self._client_for(await self._sources.resolve())

    async def plan(self) -> Plan:
        keys = await self._sources.resolve()
        return Plan(cache_key=self._cache_key(keys), fetch=lambda: self._fetch(keys))

    def _cache_key(self, keys: SourceKeys) -> str:
        return "|".join(
            (
                "v1",
                keys.access_key_id,
                self.serial or "-",
                str(self._duration),
                self.sts.region_name,
                self.sts.endpoint_url or "-",
            )
        )

    async def _client_for(self, keys: SourceKeys) -> Any:
        """The STS client, after STS confirmed the long-term keys (once per key) when an MFA
        code is at stake: a bad key, an mfa_serial of another account or an STS outage is
        reported before anyone types a code. Without MFA nothing is at stake: no extra call."""
        client = await self.sts.get(keys)
        if self.serial is None or keys.access_key_id in self._verified_keys:
            return client
        loop = asyncio.get_running_loop()
        if self._verify_lock is None or self._verify_lock[1] is not loop:
            self._verify_lock = (asyncio.Lock(), loop)
        async with self._verify_lock[0]:  # prepare() and a first refresh: one check
            if keys.access_key_id in self._verified_keys:
                return client
            account = await call_get_caller_identity(client, key_id=keys.access_key_id)
            expected = serial_account(self.serial)
            if expected and account and expected != account:
                raise MfaError(
                    f"mfa_serial {self.serial} belongs to account {expected}, but the long-term "
                    f"key {keys.access_key_id} is of account {account}: use the MFA device of "
                    "the IAM user whose keys sign the request."
                )
            self._verified_keys.add(keys.access_key_id)
        return client

    def _take_held_code(self) -> tuple[str, float] | None:
        """The code STS never judged, and when it was typed, if it is recent enough."""
        held, self._held_code = self._held_code, None
        if held is not None and self._clock() - held[1] < CODE_REUSE_SECONDS:
            return held
        return None

    async def _fetch(self, keys: SourceKeys) -> CachedToken:
        client = await self._client_for(keys)
        if self.serial is None or self._callback is None:
            return await self._call(client, keys, None)
        reason = "initial"
        rejected = malformed = 0
        for attempt in range(1, self._attempts + 1):
            held = self._take_held_code()
            code, typed_at = held if held is not None else (None, self._clock())
            if code is None:
                request = MfaRequest(
                    serial_number=self.serial,
                    attempt=attempt,
                    max_attempts=self._attempts,
                    duration_seconds=self._duration,
                    reason=reason,
                )
                self._stats.prompts += 1
                logger.info(
                    "Asking for an MFA code for %s (attempt %d/%d, %s).",
                    self.serial,
                    attempt,
                    self._attempts,
                    reason,
                )
                answer = await ask_for_code(self._callback, request, self._timeout)
                code = normalise_code(answer, request)
                if code is None:
                    malformed += 1
                    reason = "malformed"
                    logger.warning(
                        "The MFA answer for %s was not a six-digit code (attempt %d/%d).",
                        self.serial,
                        attempt,
                        self._attempts,
                    )
                    continue
                logger.debug("MFA code received for %s.", self.serial)
            try:
                return await self._call(client, keys, code)
            except CodeRejected:
                rejected += 1
                reason = "rejected"
                logger.warning(
                    "STS rejected the MFA code for %s (attempt %d/%d).",
                    self.serial,
                    attempt,
                    self._attempts,
                )
                continue
            except StsUnavailableError:
                # STS never judged this code: keep it for the next try instead of asking
                # again, and check STS answers (no prompt) before the next code is asked for.
                self._held_code = (code, typed_at)
                self._verified_keys.discard(keys.access_key_id)
                raise
        raise MfaError(_no_code_accepted(self.serial, self._attempts, rejected, malformed))

    async def _call(self, client: Any, keys: SourceKeys, code: str | None) -> CachedToken:
        self._stats.sts_calls += 1
        token = await call_get_session_token(
            client,
            duration_seconds=self._duration,
            serial=self.serial if code is not None else None,
            code=code,
            key_id=keys.access_key_id,
            clock=self._clock,
        )
        self._stats.refreshes += 1
        return token


def _no_code_accepted(serial: str, attempts: int, rejected: int, malformed: int) -> str:
    """The final MfaError message, with the advice that fits what went wrong."""
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
    return (
        f"No MFA code was accepted for {serial} in {attempts} attempt(s) ({rejected} rejected "
        f"by STS, {malformed} not six digits): {'; '.join(advice)}. Then retry (refresh())."
    )
