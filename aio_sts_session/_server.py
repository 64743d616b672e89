"""``exec --server``: a local credential endpoint in the container-credentials protocol that
every AWS SDK reads, kept fresh ahead of expiry while the command runs.

The command gets ``AWS_CONTAINER_CREDENTIALS_FULL_URI`` (``http://127.0.0.1:<random port>/``)
and ``AWS_CONTAINER_AUTHORIZATION_TOKEN`` (32 random bytes, compared in constant time): a
request without it is refused with 401, with a wrong one with 403. A :class:`Keeper` renews
every provider of the chain (the role and the MFA session beneath it) when its prefetch window
opens, so the SDKs never see credentials inside their 15-minute window and the MFA prompt for
a new session appears in the terminal ahead of time while the command keeps running.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import secrets
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiohttp import web

from ._engine import RefreshEngine
from .exceptions import StsSessionError

__all__ = ["Keeper", "credential_app", "run_with_server"]

logger = logging.getLogger("aio_sts_session")

#: Sleep at most this long between checks (a suspended laptop wakes up to a clock jump).
MAX_NAP = 60.0


class Keeper:
    """Renews each provider when its prefetch window opens (or its backoff ends), each on its
    own schedule: a renewal waiting for a human (the MFA session's prompt) holds up no other."""

    def __init__(self, providers: Sequence[RefreshEngine], clock: Callable[[], float]) -> None:
        self.providers = list(providers)
        self.clock = clock

    async def renew_if_due(self, provider: RefreshEngine) -> float:
        """Renew ``provider`` if due; returns seconds until it is due next (at least 1)."""
        due = provider._next_refresh_at()
        if due is not None and due <= self.clock():
            try:
                await provider.refresh()
            except StsSessionError as exc:
                logger.warning("Renewing ahead of expiry failed: %s", exc)
            due = provider._next_refresh_at()
        return max((due if due is not None else self.clock()) - self.clock(), 1.0)

    async def step(self) -> float:
        """Renew every provider that is due, together; seconds until the next is due."""
        waits = await asyncio.gather(*(self.renew_if_due(p) for p in self.providers))
        return min(waits, default=MAX_NAP)

    async def run(self, sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep) -> None:
        async def keep(provider: RefreshEngine) -> None:
            while True:
                await sleep(min(await self.renew_if_due(provider), MAX_NAP))

        await asyncio.gather(*(keep(p) for p in self.providers))


def credential_app(provider: RefreshEngine, token: str) -> web.Application:
    """The endpoint: ``GET`` any path with ``Authorization: <token>``."""
    expected = token.encode()

    async def handle(request: web.Request) -> web.Response:
        given = request.headers.get("Authorization")
        if given is None:
            return web.json_response({"message": "Authorization header required"}, status=401)
        if not hmac.compare_digest(given.encode(), expected):
            return web.json_response({"message": "Authorization token refused"}, status=403)
        try:
            creds = await provider.credentials()
        except StsSessionError as exc:
            return web.json_response({"message": str(exc)}, status=503)
        return web.json_response(
            {
                "AccessKeyId": creds.access_key_id,
                "SecretAccessKey": creds.secret_access_key,
                "Token": creds.session_token,
                "Expiration": creds.expiration.strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
        )

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    return app


async def run_with_server(
    chain: Sequence[RefreshEngine],
    argv: list[str],
    env: dict[str, str],
    region: str | None,
) -> int:
    """Obtain credentials, start the endpoint, run the command, keep renewing until it
    exits; returns its exit status (128 + signal number if a signal ended it)."""
    provider = chain[0]
    await provider.credentials()  # any prompt happens before the command starts
    token = secrets.token_urlsafe(32)
    runner = web.AppRunner(credential_app(provider, token), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    env = dict(env)
    env["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = f"http://127.0.0.1:{port}/"
    env["AWS_CONTAINER_AUTHORIZATION_TOKEN"] = token
    if region:
        env["AWS_REGION"] = env["AWS_DEFAULT_REGION"] = region
    keeper = asyncio.create_task(Keeper(chain, provider._clock).run())
    loop = asyncio.get_running_loop()
    try:
        try:
            child = await asyncio.create_subprocess_exec(*argv, env=env)
        except OSError as exc:
            raise StsSessionError(f"Cannot run {argv[0]!r}: {exc.strerror}.") from None
        forwarded = _forward_signals(loop, child)
        try:
            status = await child.wait()
        finally:
            for signum in forwarded:
                loop.remove_signal_handler(signum)
    finally:
        keeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await keeper
        await runner.cleanup()
    return status if status >= 0 else 128 - status


def _forward_signals(
    loop: asyncio.AbstractEventLoop, child: asyncio.subprocess.Process
) -> list[int]:
    """Ctrl-C reaches the command from the terminal (same process group): ignore it here and
    let the command decide; pass SIGTERM and SIGHUP on. The server ends with the command."""
    if sys.platform == "win32":  # pragma: no cover
        return []
    handled: list[int] = []
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):

        def forward(signum: int = signum) -> None:
            if signum != signal.SIGINT:
                with contextlib.suppress(ProcessLookupError):
                    child.send_signal(signum)

        loop.add_signal_handler(signum, forward)
        handled.append(signum)
    return handled
