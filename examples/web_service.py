"""An aiohttp service whose MFA code is approved from outside: a chat-ops pattern.

The service's MFA callback does not prompt anyone on a terminal: it publishes "a code is
wanted" (here on ``GET /mfa``; in real life a chat message with a link) and waits for someone
to ``POST /mfa`` the code. Meanwhile requests never hang on a person: with ``max_wait`` a
request that would wait for the approval gets a 503 at once, and ``keep_fresh()`` asks for the
next code 30 minutes before the session in hand ends, so renewals never make anyone wait.

The demo needs no AWS account and no person: the strict fake STS of ``aio_sts_session.testing``
on 127.0.0.1, a clock moved by hand (six simulated hours in a few seconds), 20 clients calling
the service every simulated 5 minutes, and an "approver" that answers each request for a code
10 simulated minutes after it was published. Run it with:

    python examples/web_service.py
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

from aiobotocore.session import AioSession
from aiohttp import ClientSession, web

from aio_sts_session import (
    MfaRequest,
    ProviderEvent,
    RefreshPendingError,
    SessionTokenProvider,
    StsSessionError,
)
from aio_sts_session.testing import FakeSts, ManualClock

STEP = 300  # simulated seconds between rounds of requests
HOURS = 6
CLIENTS = 20
APPROVER_DELAY = 2  # rounds (10 simulated minutes) before the approver answers


class CodeInbox:
    """The MFA callback's side of the approval: one request for a code at a time, answered by
    a POST to the service (or given up after the provider's ``mfa_timeout``)."""

    def __init__(self) -> None:
        self.wanted: MfaRequest | None = None
        self._answer: asyncio.Future[str] | None = None

    async def ask(self, request: MfaRequest) -> str:
        self.wanted = request
        self._answer = asyncio.get_running_loop().create_future()
        print(f"  [chat] MFA code wanted for {request.serial_number} (attempt {request.attempt})")
        try:
            return await self._answer
        finally:
            self.wanted, self._answer = None, None

    def answer(self, code: str) -> bool:
        if self._answer is None or self._answer.done():
            return False
        self._answer.set_result(code)
        return True


def make_app(provider: SessionTokenProvider, inbox: CodeInbox, sts_url: str) -> web.Application:
    app = web.Application()
    session = provider.attach(AioSession())  # every client refreshes through the provider
    sts_client: web.AppKey[Any] = web.AppKey("sts_client")  # aiobotocore clients are untyped

    async def aws_clients(app: web.Application) -> AsyncIterator[None]:
        # One client for the service's life, as with any AWS client: it signs each call with
        # the provider's credentials of the moment and refreshes through the provider.
        async with session.create_client(
            "sts", endpoint_url=sts_url, region_name="us-east-1"
        ) as client:
            app[sts_client] = client
            yield

    async def whoami(request: web.Request) -> web.Response:
        try:
            identity = await request.app[sts_client].get_caller_identity()  # the MFA session
        except RefreshPendingError:  # an approval is awaited: say so at once, never hang
            return web.json_response({"error": "credentials pending approval"}, status=503)
        except StsSessionError as exc:  # e.g. the approver never answered: the next try asks
            return web.json_response({"error": type(exc).__name__}, status=503)
        return web.json_response({"user_id": identity["UserId"]})

    async def mfa_status(request: web.Request) -> web.Response:
        wanted = inbox.wanted
        return web.json_response(
            {"wanted": wanted is not None, "serial": wanted.serial_number if wanted else None}
        )

    async def mfa_answer(request: web.Request) -> web.Response:
        code = (await request.text()).strip()
        return web.json_response({"accepted": inbox.answer(code)})

    app.cleanup_ctx.append(aws_clients)
    app.router.add_get("/whoami", whoami)
    app.router.add_get("/mfa", mfa_status)
    app.router.add_post("/mfa", mfa_answer)
    return app


async def settled(clock: ManualClock, inbox: CodeInbox) -> None:
    """Let the renewal task catch up with the clock: until it sleeps again, or waits for a
    code (the demo's time moves only when nothing is left to do at this instant)."""
    for _ in range(100_000):
        if clock.sleepers or inbox.wanted is not None:
            return
        await asyncio.sleep(0.001)


async def main() -> dict[str, Any]:
    logging.basicConfig(level=logging.WARNING)
    clock = ManualClock()
    events: list[ProviderEvent] = []
    async with FakeSts(clock=clock) as sts:
        inbox = CodeInbox()
        provider = SessionTokenProvider(
            mfa_serial=sts.mfa_serial,
            mfa_callback=inbox.ask,
            duration_seconds=3600,  # one-hour sessions, to see several renewals in the demo
            prefetch_seconds=1800,  # ask 30 minutes ahead: time for an approver to answer
            stale_seconds=300,
            max_wait=0.5,  # a request never waits more than half a second for an approval
            mfa_timeout=1200,  # an approver has 20 minutes
            endpoint_url=sts.url,
            region_name="us-east-1",
            source_session=sts.source_session(),
            clock=clock,
            on_event=events.append,
        )
        runner = web.AppRunner(make_app(provider, inbox, sts.url), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        print(f"service on {url}, fake STS on {sts.url}")
        statuses: dict[int, int] = {}
        pending_rounds = 0
        async with ClientSession() as http, provider:
            provider.keep_fresh()  # the first code is asked for now, not at the first request
            for _ in range(HOURS * 3600 // STEP):
                await settled(clock, inbox)
                answers = await asyncio.gather(*(http.get(f"{url}/whoami") for _ in range(CLIENTS)))
                for answer in answers:
                    statuses[answer.status] = statuses.get(answer.status, 0) + 1
                    answer.release()
                wanted = (await (await http.get(f"{url}/mfa")).json())["wanted"]
                pending_rounds = pending_rounds + 1 if wanted else 0
                if wanted and pending_rounds > APPROVER_DELAY:  # the approver answers
                    await http.post(f"{url}/mfa", data=sts.code())
                    await provider.settle()  # STS judges the code now, not 5 minutes later
                    pending_rounds = 0
                clock.advance(STEP)
        await runner.cleanup()
    figures = {
        "simulated_hours": HOURS,
        "requests": sum(statuses.values()),
        "served": statuses.get(200, 0),
        "pending_503": statuses.get(503, 0),
        "other_errors": sum(n for s, n in statuses.items() if s not in (200, 503)),
        "codes_asked": sum(e.kind == "mfa_requested" for e in events),
        "sts_calls": len(sts.calls["GetSessionToken"]),
        "refreshes_ahead": sum(e.kind == "refreshed" and e.reason == "prefetch" for e in events),
    }
    print(
        f"{figures['simulated_hours']} simulated hours, {figures['requests']} requests: "
        f"{figures['served']} served, {figures['pending_503']} answered 503 while the first "
        f"code awaited approval, {figures['other_errors']} other errors; "
        f"{figures['codes_asked']} codes asked for, {figures['sts_calls']} GetSessionToken "
        f"calls, {figures['refreshes_ahead']} renewals ahead of expiry"
    )
    return figures


if __name__ == "__main__":
    asyncio.run(main())
