"""``SessionTokenProvider``: one refresh at a time, prefetch in the background, back off."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import os
from types import TracebackType
from typing import Any

from . import _aiobotocore, _policy
from ._cache import MemoryCache, TokenCache
from ._clock import Clock, system_clock
from ._config import validate
from ._flight import Flight
from ._mfa import ask_for_code, is_well_formed_code
from ._models import CachedToken, MfaCallback, MfaRequest, SessionCredentials
from ._policy import State
from ._sts import (
    CodeRejected,
    SourceKeys,
    call_get_caller_identity,
    call_get_session_token,
    serial_account,
)
from .exceptions import (
    ConfigurationError,
    MfaError,
    ProviderClosedError,
    StsUnavailableError,
)

__all__ = ["ProviderStats", "SessionTokenProvider"]

logger = logging.getLogger("aio_sts_session")

#: A code STS never saw (the call failed before STS could judge it) is offered again for this
#: long after it was typed, instead of asking the human again. TOTP codes live 30 s.
CODE_REUSE_SECONDS = 30.0
#: Waiting for another process's refresh: longer than any MFA prompt it may be showing.
DEFAULT_PROMPT_BOUND = 300.0


@dataclasses.dataclass
class ProviderStats:
    """Counters for what the provider did (for logs, demos and tests)."""

    prompts: int = 0  # times the MFA callback was asked
    sts_calls: int = 0  # GetSessionToken calls made (botocore retries count once)
    refreshes: int = 0  # refreshes that produced new credentials from STS
    cache_loads: int = 0  # refreshes answered by the (shared) cache instead of STS
    failures: int = 0  # refreshes that failed


class SessionTokenProvider:
    """Temporary credentials from STS GetSessionToken, refreshed before they expire.

    ``await provider.credentials()`` answers from memory while the credentials are fresh; in
    the prefetch window it answers at once and starts one background refresh; in the stale
    window or after expiry every caller waits for the one refresh in flight. See the README's
    configuration table for each argument.
    """

    def __init__(
        self,
        *,
        mfa_serial: str | None = None,
        mfa_callback: MfaCallback | None = None,
        duration_seconds: int = 43200,
        source_session: Any | None = None,
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
        self._serial = mfa_serial
        self._callback = mfa_callback
        self._duration = duration_seconds
        self._prefetch_seconds = float(prefetch_seconds)
        self._stale_seconds = float(stale_seconds)
        self._attempts = mfa_attempts
        self._mfa_timeout = mfa_timeout
        self._clock: Clock = clock or system_clock
        self._cache: TokenCache = cache if cache is not None else MemoryCache()
        self._lock_timeout = (mfa_timeout or DEFAULT_PROMPT_BOUND) * mfa_attempts + 60.0
        self._sources = _aiobotocore.SourceResolver(source_session)
        region = region_name or _aiobotocore.default_region(source_session)
        self._sts = _aiobotocore.StsClientFactory(
            region_name=region, endpoint_url=endpoint_url, config=sts_config
        )
        self._attached_credentials = _aiobotocore.ProviderCredentials(self)
        self.stats = ProviderStats()

        self._current: CachedToken | None = None
        self._windows = _policy.Windows(0.0, 0.0)
        self._fresh_until = -math.inf
        self._fresh: SessionCredentials | None = None
        self._flight: Flight | None = None
        self._prefetch_scheduled = False
        self._prefetch_attempts = 0
        self._prefetch_retry_at = -math.inf
        self._outage_failures = 0
        self._fail_fast_until = -math.inf
        self._last_outage: StsUnavailableError | None = None
        self._held_code: tuple[str, float] | None = None
        self._verified_keys: set[str] = set()
        self._closed = False

    def __repr__(self) -> str:
        state = "closed" if self._closed else self.state().value
        return (
            f"SessionTokenProvider(mfa_serial={self._serial!r}, "
            f"duration_seconds={self._duration}, state={state!r})"
        )

    # -- public API ----------------------------------------------------------------------------

    async def credentials(self) -> SessionCredentials:
        """Current credentials, refreshing them first (once, for every caller) if needed."""
        # The fast path: one clock read, one comparison. _fresh_until is -inf while there are
        # no fresh credentials, so _fresh is set whenever the comparison holds.
        if self._clock() < self._fresh_until:
            return self._fresh  # type: ignore[return-value]
        served = self._serve_without_waiting()
        if served is not None:
            return served
        return (await self._wait_for_refresh()).credentials

    async def prepare(self) -> None:
        """Check what can be checked without a prompt, and warm up: find the long-term keys,
        have STS confirm them (GetCallerIdentity, which needs no permission), create the STS
        client and its TLS context. Optional; call it at start-up to fail fast
        (``SourceCredentialsError``) and to take this work off the first request."""
        self._check_open()
        await self._client_for(await self._sources.resolve())

    async def refresh(self) -> SessionCredentials:
        """Get new credentials now, whatever the state (joins a refresh already in flight).

        For when you know the current ones are no good (a policy changed, a key was rotated).
        """
        self._check_open()
        if self._flight is None:
            self._start_flight(background=False)
        assert self._flight is not None
        return (await self._flight.wait()).credentials

    def peek(self) -> SessionCredentials | None:
        """The current credentials if they can be handed out right now with no decision to
        make (fresh, or in the prefetch window with the refresh under way), else ``None``."""
        fresh = self._fresh
        if fresh is not None and self._clock() < self._fresh_until:
            return fresh
        return None

    def state(self) -> State:
        """Where the current credentials are in their lifetime (``EXPIRED`` if none)."""
        if self._current is None:
            return State.EXPIRED
        return _policy.classify(self._clock(), self._current.expires_at, self._windows)

    def attach(self, session: Any) -> Any:
        """Make every client created from ``session`` (an ``AioSession`` or ``aioboto3.Session``)
        afterwards sign with this provider's credentials. Returns the same session."""
        self._check_open()
        _aiobotocore.attach(self, self._attached_credentials, self._sources, session)
        return session

    async def close(self) -> None:
        """Stop any refresh in flight and close the STS client. Idempotent."""
        self._closed = True
        self._fresh, self._fresh_until = None, -math.inf  # the fast path must see the close
        flight, self._flight = self._flight, None
        if flight is not None:
            await flight.cancel()
        await self._sts.close()

    async def __aenter__(self) -> SessionTokenProvider:
        self._check_open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- deciding ------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise ProviderClosedError(
                "This SessionTokenProvider is closed; create a new one (or don't close it while "
                "clients still use it)."
            )

    def _serve_without_waiting(self) -> SessionCredentials | None:
        """The credentials a caller may have at once (fresh, or in the prefetch window, where
        one background refresh is scheduled), or ``None`` if it must wait. Synchronous, so
        the prefetch path costs callers no extra coroutine; it also moves the fast path's
        boundary to the next instant a decision is due."""
        self._check_open()
        current = self._current
        if current is None:
            return None
        now = self._clock()
        state = _policy.classify(now, current.expires_at, self._windows)
        if state is State.EXPIRED or state is State.STALE:
            return None
        if state is State.PREFETCH and self._may_prefetch(now):
            self._prefetch_attempts += 1
            self._schedule_prefetch()
        self._fresh = current.credentials
        self._fresh_until = _policy.next_decision_at(
            state,
            current.expires_at,
            self._windows,
            refresh_pending=self._flight is not None or self._prefetch_scheduled,
            prefetch_attempts=self._prefetch_attempts,
            retry_at=self._prefetch_retry_at,
        )
        return current.credentials

    def _wait_for_refresh(self) -> asyncio.Future[CachedToken]:
        """STALE or EXPIRED: every caller waits for the one refresh. Returns this caller's
        future (a plain function, so waiting costs no coroutine of its own)."""
        if self._flight is None:
            now = self._clock()
            if now < self._fail_fast_until and self._last_outage is not None:
                raise StsUnavailableError(
                    f"STS was unavailable at the last refresh; retrying in "
                    f"{self._fail_fast_until - now:.0f} s. {self._last_outage}"
                ) from self._last_outage
            self._start_flight(background=False)
        assert self._flight is not None
        return self._flight.wait()

    def _may_prefetch(self, now: float) -> bool:
        if self._flight is not None or self._prefetch_scheduled:
            return False
        if self._prefetch_attempts == 0:
            return True
        retry_due = now >= self._prefetch_retry_at
        return self._prefetch_attempts < _policy.PREFETCH_ATTEMPTS and retry_due

    def _start_flight(self, *, background: bool) -> None:
        # A waiting caller starts its refresh eagerly; a prefetch is left to the next loop
        # iteration, so the caller that triggers it returns as fast as any other.
        self._flight = Flight(self._refresh(background), self._flight_done, eager=not background)

    def _schedule_prefetch(self) -> None:
        if not self._prefetch_scheduled:
            self._prefetch_scheduled = True
            asyncio.get_running_loop().call_soon(self._start_prefetch)

    def _start_prefetch(self) -> None:
        self._prefetch_scheduled = False
        if self._flight is None and not self._closed:
            self._start_flight(background=True)

    def _flight_done(self, flight: Flight) -> None:
        if self._flight is flight:
            self._flight = None

    # -- refreshing ----------------------------------------------------------------------------

    async def _refresh(self, background: bool) -> CachedToken:
        try:
            token = await self._obtain(background)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            self._record_failure(exc, background)
            raise
        finally:
            # Cleared here, before the task completes, so a caller arriving in between starts
            # afresh from the state just recorded (Flight's done-callback clears it too, for a
            # flight cancelled before it ran).
            if self._flight is not None and self._flight.task is asyncio.current_task():
                self._flight = None
        self._adopt(token)
        return token

    def _adopt(self, token: CachedToken) -> None:
        self._current = token
        self._windows = _policy.effective_windows(
            token.lifetime, self._prefetch_seconds, self._stale_seconds
        )
        self._fresh_until = token.expires_at - self._windows.prefetch
        self._fresh = token.credentials
        self._prefetch_attempts = 0
        self._prefetch_retry_at = -math.inf
        self._outage_failures = 0
        self._fail_fast_until = -math.inf
        self._last_outage = None
        if token.skew:
            logger.info(
                "STS's clock is %+.0f s from this machine's; expiry times are corrected.",
                token.skew,
            )

    def _record_failure(self, exc: BaseException, background: bool) -> None:
        self.stats.failures += 1
        self._fresh_until = -math.inf  # the next caller decides again
        now = self._clock()
        if background and self._current is not None:
            self._prefetch_retry_at = _policy.prefetch_retry_at(
                now, self._current.expires_at, self._windows
            )
        if isinstance(exc, StsUnavailableError):
            self._outage_failures += 1
            self._last_outage = exc
            self._fail_fast_until = now + _policy.blocking_retry_delay(self._outage_failures)

    def _cache_key(self, keys: SourceKeys) -> str:
        return "|".join(
            (
                "v1",
                keys.access_key_id,
                self._serial or "-",
                str(self._duration),
                self._sts.region_name,
                self._sts.endpoint_url or "-",
            )
        )

    def _usable(self, token: CachedToken, background: bool) -> bool:
        """Whether a token found in the cache beats what we hold."""
        current = self._current
        if current is not None and token.expires_at <= current.expires_at:
            return False
        windows = _policy.effective_windows(
            token.lifetime, self._prefetch_seconds, self._stale_seconds
        )
        state = _policy.classify(self._clock(), token.expires_at, windows)
        return state is State.FRESH or (state is State.PREFETCH and not background)

    async def _obtain(self, background: bool) -> CachedToken:
        # Everything that can be checked is checked before a human is asked for a code.
        keys = await self._sources.resolve()
        key = self._cache_key(keys)
        async with self._cache.lock(key, self._lock_timeout):
            cached = await self._cache.load(key)
            if cached is not None and self._usable(cached, background):
                self.stats.cache_loads += 1
                return cached
            token = await self._fetch(keys)
            await self._cache.store(key, token)
            return token

    def _take_held_code(self) -> str | None:
        held, self._held_code = self._held_code, None
        if held is not None and self._clock() - held[1] < CODE_REUSE_SECONDS:
            return held[0]
        return None

    async def _client_for(self, keys: SourceKeys) -> Any:
        """The STS client, after STS confirmed the long-term keys (once per key): a bad key
        or an mfa_serial of another account is reported before anyone types a code."""
        client = await self._sts.get(keys)
        if keys.access_key_id not in self._verified_keys:
            account = await call_get_caller_identity(client, key_id=keys.access_key_id)
            expected = serial_account(self._serial) if self._serial else None
            if expected and account and expected != account:
                raise MfaError(
                    f"mfa_serial {self._serial} belongs to account {expected}, but the long-term "
                    f"key {keys.access_key_id} is of account {account}: use the MFA device of "
                    "the IAM user whose keys sign the request."
                )
            self._verified_keys.add(keys.access_key_id)
        return client

    async def _fetch(self, keys: SourceKeys) -> CachedToken:
        client = await self._client_for(keys)
        if self._serial is None or self._callback is None:
            self.stats.sts_calls += 1
            token = await call_get_session_token(
                client,
                duration_seconds=self._duration,
                serial=None,
                code=None,
                key_id=keys.access_key_id,
                clock=self._clock,
            )
            self.stats.refreshes += 1
            return token
        reason = "initial"
        rejected = malformed = 0
        for attempt in range(1, self._attempts + 1):
            code = self._take_held_code()
            asked_at = self._clock()
            if code is None:
                request = MfaRequest(
                    serial_number=self._serial,
                    attempt=attempt,
                    max_attempts=self._attempts,
                    duration_seconds=self._duration,
                    reason=reason,
                )
                self.stats.prompts += 1
                answer = await ask_for_code(self._callback, request, self._mfa_timeout)
                if not is_well_formed_code(answer):
                    malformed += 1
                    reason = "malformed"
                    logger.warning(
                        "The MFA callback returned %s, not six digits as a str (attempt %d/%d).",
                        type(answer).__name__,
                        attempt,
                        self._attempts,
                    )
                    continue
                assert isinstance(answer, str)
                code = answer
            try:
                self.stats.sts_calls += 1
                token = await call_get_session_token(
                    client,
                    duration_seconds=self._duration,
                    serial=self._serial,
                    code=code,
                    key_id=keys.access_key_id,
                    clock=self._clock,
                )
            except CodeRejected:
                rejected += 1
                reason = "rejected"
                logger.warning(
                    "STS rejected the MFA code for %s (attempt %d/%d).",
                    self._serial,
                    attempt,
                    self._attempts,
                )
                continue
            except StsUnavailableError:
                # STS never judged this code: keep it for the next try instead of asking again.
                self._held_code = (code, asked_at)
                raise
            self.stats.refreshes += 1
            return token
        raise MfaError(
            f"No MFA code was accepted for {self._serial} in {self._attempts} attempt(s) "
            f"({rejected} rejected by STS, {malformed} not six digits). Check the device's "
            "clock and that mfa_serial names the device the codes come from, then retry."
        )
