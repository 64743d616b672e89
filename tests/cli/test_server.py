"""exec --server's keeper: renewing ahead of expiry, with the MFA prompt for a new session
appearing well before the session ends while the command keeps running (simulated hours, one
injected clock), and the endpoint's protocol."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable

import pytest
from aiohttp import ClientSession

from aio_sts_session import SessionTokenProvider
from aio_sts_session.cli.server import CredentialServer
from aio_sts_session.testing import FakeSts
from aio_sts_session.testing._fake_sts import NS

from ..conftest import FakeClock

MakeProvider = Callable[..., SessionTokenProvider]


@pytest.fixture
def clock() -> FakeClock:
    """Simulated hours: the injected clock from T0, not the command line's wall clock."""
    return FakeClock()


WINDOWS = {"prefetch_seconds": 1500, "stale_seconds": 960}  # what exec --server uses
TOKEN = "s3cret-token-0123456789abcdefghijklmnopqrstuv"
NO_RESULT = f'<GetSessionTokenResponse xmlns="{NS}"><ResponseMetadata/></GetSessionTokenResponse>'


async def raw_request(url: str, data: bytes) -> tuple[int, bytes]:
    """Send ``data`` as it is; the status and body of the answer (0 if the server closed)."""
    host, port = url.split("/")[2].split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(data)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 30)
    finally:
        writer.close()
    if not answer:
        return 0, b""
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), body


def get(token: str | bytes | None, method: bytes = b"GET", path: bytes = b"/x") -> bytes:
    auth = b""
    if token is not None:
        auth = b"Authorization: " + (token.encode() if isinstance(token, str) else token) + b"\r\n"
    return method + b" " + path + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n" + auth + b"\r\n"


@pytest.fixture
async def endpoint(make_provider: MakeProvider) -> AsyncIterator[CredentialServer]:
    server = CredentialServer(make_provider(), TOKEN)
    await server.start()
    yield server
    await server.close()


async def test_the_endpoint_refuses_requests_without_the_token(
    endpoint: CredentialServer, fake_sts: FakeSts
) -> None:
    assert (await raw_request(endpoint.url, get(None)))[0] == 401
    assert (await raw_request(endpoint.url, get("nope")))[0] == 403
    assert fake_sts.calls == []  # refused before any credential work
    url, auth = endpoint.url + "any/path", {"Authorization": TOKEN}
    async with ClientSession() as http, http.get(url, headers=auth) as ok:  # an ordinary client
        assert ok.status == 200
        body = await ok.json()
    assert set(body) == {"AccessKeyId", "SecretAccessKey", "Token", "Expiration"}
    assert body["Expiration"].endswith("Z")
    assert endpoint.url.startswith("http://127.0.0.1:")


@pytest.mark.parametrize("method", [b"GET", b"POST", b"PUT", b"DELETE", b"HEAD", b"OPTIONS"])
@pytest.mark.parametrize("path", [b"/", b"/latest/meta-data", b"/..%2f", b"*"])
async def test_every_method_and_path_needs_the_token(
    endpoint: CredentialServer, fake_sts: FakeSts, method: bytes, path: bytes
) -> None:
    assert (await raw_request(endpoint.url, get(None, method, path)))[0] == 401
    assert (await raw_request(endpoint.url, get("wrong", method, path)))[0] == 403
    status, _ = await raw_request(endpoint.url, get(TOKEN, method, path))
    assert status == (200 if method == b"GET" else 405)
    assert len(fake_sts.token_calls) == (1 if method == b"GET" else 0)


@pytest.mark.parametrize("value", [b"\xff\xfe\xfd", TOKEN.encode() + b"\xff", b"\x80" * 43])
async def test_a_non_utf8_authorization_header_is_refused_not_a_crash(
    endpoint: CredentialServer, value: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    status, body = await raw_request(endpoint.url, get(value))
    assert status == 403
    assert b"Traceback" not in body
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert (await raw_request(endpoint.url, get(TOKEN)))[0] == 200  # still serving


async def test_a_second_authorization_header_is_refused(endpoint: CredentialServer) -> None:
    request = get(TOKEN).replace(b"\r\n\r\n", b"\r\nAuthorization: other\r\n\r\n")
    assert (await raw_request(endpoint.url, request))[0] == 403


async def test_oversized_headers_are_refused(endpoint: CredentialServer) -> None:
    request = get(TOKEN).replace(b"\r\n\r\n", b"\r\nX-Pad: " + b"a" * 40_000 + b"\r\n\r\n")
    assert (await raw_request(endpoint.url, request))[0] in (0, 431)


async def test_half_sent_requests_cannot_exhaust_the_endpoint(
    make_provider: MakeProvider, fake_sts: FakeSts
) -> None:
    """A local user without the token opens many connections and never finishes a request:
    each new one evicts the oldest stalled one, so at most MAX connections are held and a
    valid request is still served at once."""
    server = CredentialServer(make_provider(), TOKEN, max_connections=16, header_timeout=60)
    await server.start()
    host, port = server.url.split("/")[2].split(":")
    held: list[asyncio.StreamWriter] = []
    try:
        for _ in range(200):
            _, writer = await asyncio.open_connection(host, int(port))
            writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
            held.append(writer)
        await asyncio.sleep(0)  # let the server accept what is queued
        for _ in range(3):
            status, _ = await asyncio.wait_for(raw_request(server.url, get(TOKEN)), 10)
            assert status == 200
        assert len(server._connections) <= 16
    finally:
        for writer in held:
            writer.close()
        await server.close()
        await server.provider.close()


async def test_a_stalled_request_is_dropped_after_the_header_timeout(
    make_provider: MakeProvider,
) -> None:
    server = CredentialServer(make_provider(), TOKEN, header_timeout=0.2)
    await server.start()
    host, port = server.url.split("/")[2].split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(b"GET / HTTP/1.1\r\n")
        assert await asyncio.wait_for(reader.read(), 10) == b""  # closed by the server
    finally:
        writer.close()
        await server.close()
        await server.provider.close()


async def test_a_thousand_concurrent_requests_cost_one_prompt_and_one_sts_call(
    make_provider: MakeProvider, fake_sts: FakeSts, device: object
) -> None:
    server = CredentialServer(make_provider(), TOKEN, max_connections=1000)
    await server.start()
    try:
        async with ClientSession() as http:

            async def fetch() -> dict[str, str]:
                async with http.get(server.url, headers={"Authorization": TOKEN}) as answer:
                    assert answer.status == 200
                    return dict(await answer.json())

            bodies = await asyncio.gather(*(fetch() for _ in range(1000)))
    finally:
        await server.close()
    assert len({b["AccessKeyId"] for b in bodies}) == 1
    assert len(fake_sts.token_calls) == 1
    assert len(device.requests) == 1  # type: ignore[attr-defined]


# -- red-team review 2: another local user's connections ------------------------------------


def test_the_owner_of_a_connection_is_told_on_linux() -> None:
    import os
    import socket

    from aio_sts_session._procs import LINUX, socket_owner

    listener = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(listener.getsockname())
    accepted, _ = listener.accept()
    try:
        owner = socket_owner(accepted.getpeername(), accepted.getsockname())
        assert owner == (os.getuid() if LINUX else None)
        assert socket_owner(("127.0.0.1", 1), ("127.0.0.1", 2)) is None  # no such socket
    finally:
        for s in (accepted, client, listener):
            s.close()


FLOOD = """
import socket, sys
host, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
held = []
for _ in range(count):
    s = socket.create_connection((host, port))
    s.sendall(b"GET / HTTP/1.1\\r\\nHost: x\\r\\n")  # and never the blank line
    held.append(s)
print("flooding", flush=True)
sys.stdin.read()  # hold them until told
"""


def _other_user_command() -> list[str] | None:
    import os
    import shutil
    import sys

    setpriv = shutil.which("setpriv")
    if os.getuid() != 0 or setpriv is None or not sys.platform.startswith("linux"):
        return None
    python = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
    return [setpriv, "--reuid", "65534", "--regid", "65534", "--clear-groups", python]


@pytest.mark.skipif(_other_user_command() is None, reason="needs root, setpriv and Linux")
async def test_another_users_flood_takes_no_slot_and_starves_nothing(
    make_provider: MakeProvider, fake_sts: FakeSts
) -> None:
    """Red-team review 2: another local user's connections (>= 640 per second) evicted the
    SDK's own. Now each is refused before a byte is read and takes no slot."""
    server = CredentialServer(make_provider(), TOKEN, max_connections=16, header_timeout=60)
    await server.start()
    host, port = server.url.split("/")[2].split(":")
    command = _other_user_command()
    assert command is not None
    flood = await asyncio.create_subprocess_exec(
        *command, "-c", FLOOD, host, port, "300",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert flood.stdout is not None
        assert await asyncio.wait_for(flood.stdout.readline(), 60) == b"flooding\n"
        # Our own half-sent connection, in the middle of the flood, is never evicted:
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(get(TOKEN)[:20])
        for _ in range(600):  # until the server has seen every connection of the flood
            if server.refused_users >= 300:
                break
            await asyncio.sleep(0.05)
        assert server.refused_users == 300
        writer.write(get(TOKEN)[20:])
        answer = await asyncio.wait_for(reader.read(), 30)
        assert answer.startswith(b"HTTP/1.1 200 ")
        writer.close()
    finally:
        assert flood.stdin is not None
        flood.stdin.close()
        await flood.wait()
        await server.close()
        await server.provider.close()


def _with(extra: bytes, request: bytes | None = None) -> bytes:
    """A valid request for the token with ``extra`` header lines added."""
    return (request or get(TOKEN)).replace(b"\r\n\r\n", b"\r\n" + extra + b"\r\n\r\n")


#: What the red-team review sent (28 malformed requests), and the statuses acceptable for
#: each: never a crash, never credentials for a request that does not carry the token.
MALFORMED: list[tuple[str, bytes, set[int]]] = [
    ("two-authorization", _with(b"Authorization: " + TOKEN.encode()), {403}),
    ("authorization-folded", get(None).replace(b"\r\n\r\n", b"\r\nAuthorization: x\r\n "
                                               + TOKEN.encode() + b"\r\n\r\n"), {403}),
    ("bare-cr", get(TOKEN).replace(b"\r\nHost", b"\rHost"), {0, 200, 400}),
    ("nul-in-token", get(TOKEN.encode() + b"\x00"), {403}),
    ("nul-in-request-line", get(TOKEN).replace(b"/x", b"/\x00x"), {0, 200, 400}),
    ("non-utf8-token", get(b"\xff" * 43), {403}),
    ("non-utf8-header-name", _with(b"\xff\xfe: 1"), {200}),
    ("head", get(TOKEN, b"HEAD"), {405}),
    ("options", get(TOKEN, b"OPTIONS"), {405}),
    ("lowercase-method", get(TOKEN, b"get"), {405}),
    ("a-body", _with(b"Content-Length: 5") + b"hello", {400}),
    ("chunked-body", _with(b"Transfer-Encoding: chunked") + b"5\r\nhi!!!\r\n0\r\n\r\n",
     {0, 200, 400}),
    ("pipelined", get(TOKEN) + get(TOKEN), {200}),
    ("keep-alive-asked", _with(b"Connection: keep-alive"), {200}),
    ("expect-continue", _with(b"Expect: 100-continue"), {200}),
    ("headers-over-16k", _with(b"X-Pad: " + b"a" * 20_000), {0, 431}),
    ("3000-headers", _with(b"\r\n".join(b"X-%d: 1" % i for i in range(3000))), {0, 431}),
    ("http2-preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", {400}),
    ("http09", b"GET /\r\n\r\n", {400}),
    ("empty-request", b"\r\n\r\n", {400}),
    ("garbage", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", {400}),  # TLS
    ("absolute-uri", get(TOKEN, path=b"http://169.254.169.254/latest"), {200}),
    ("long-request-line", get(TOKEN, path=b"/" + b"a" * 15_000), {200}),
    ("bearer-prefix", get("Bearer " + TOKEN), {403}),
    ("token-prefix-only", get(TOKEN[:-1]), {403}),
    ("token-plus-suffix", get(TOKEN + "x"), {403}),
    ("lowercase-header", get(TOKEN).replace(b"Authorization", b"authorization"), {200}),
    ("http-1.0", get(TOKEN).replace(b"HTTP/1.1", b"HTTP/1.0"), {200}),
]  # fmt: skip


@pytest.mark.parametrize(
    ("request_bytes", "allowed"),
    [(r, a) for _, r, a in MALFORMED],
    ids=[n for n, _, _ in MALFORMED],
)
async def test_malformed_requests_are_answered_or_dropped_never_a_crash(
    endpoint: CredentialServer,
    request_bytes: bytes,
    allowed: set[int],
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert len(MALFORMED) == 28
    status, body = await raw_request(endpoint.url, request_bytes)
    assert status in allowed, (status, body)
    assert b"Traceback" not in body
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert (await raw_request(endpoint.url, get(TOKEN)))[0] == 200  # still serving
