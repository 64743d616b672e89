"""A strict fake of STS (and the IAM access-key calls), an aiohttp app on 127.0.0.1, for the
tests of a program that uses aio-sts-session, and for this project's own.

It verifies the SigV4 signature of every request with the caller's secret (in the region it
serves, and refuses a request signed more than 15 minutes off its clock, as STS does), accepts
each TOTP code once, judged by its own clock, and only for the device of the user who signs;
enforces 900..129600 s durations (and an optional cap, as STS does for root), issues unique
credentials that expire by the injected clock, checks session tokens on later calls
(``GetCallerIdentity``, ``AssumeRole``), and injects faults, delays and gates on demand, for
any action.

AssumeRole is checked as STS does: each :class:`Role` has a trust policy (which users, MFA
required, an external id, ``sts:TagSession``, ``sts:SetSourceIdentity``) and a
``MaxSessionDuration``; a role assumed with temporary credentials is capped at one hour ("role
chaining"); MFA is present when the signing session was made with a code, or when the call
itself carries a valid one. Session tags, transitive tag keys, a source identity and session
policies are recorded (``Call.options``) and held to STS's rules: a transitive tag or a source
identity set earlier in a chain cannot be changed.

The console's federation endpoint is played too, at ``/federation`` (:attr:`FakeSts.signin_url`):
``getSigninToken`` takes role credentials only (not GetSessionToken's), and ``login`` answers
for a sign-in token it issued, once.

Two clocks: botocore signs with the machine's wall clock, so ``X-Amz-Date`` is checked against
``time.time() + server_offset``; everything about tokens and codes follows the injected clock
(``clock() + server_offset``), which tests move (:class:`~aio_sts_session.testing.ManualClock`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import email.utils
import json
import random
import secrets
import time
import urllib.parse
from collections import deque
from collections.abc import Callable
from typing import Any

from aiohttp import web

try:
    import pyotp
except ImportError as exc:  # pragma: no cover - the extra is missing
    raise ImportError(
        "aio_sts_session.testing needs pyotp (TOTP codes): pip install 'aio-sts-session[testing]'"
    ) from exc
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

NS = "https://sts.amazonaws.com/doc/2011-06-15/"
IAM_NS = "https://iam.amazonaws.com/doc/2010-05-08/"
INVALID_CODE = "MultiFactorAuthentication failed with invalid MFA one time pass code."
BAD_SERIAL = (
    "MultiFactorAuthentication failed, unable to validate MFA code. Please verify your MFA "
    "serial number is valid and associated with this user."
)


@dataclasses.dataclass
class Fault:
    """One canned failure, consumed by the next request for ``action`` (``None``: any).

    ``kind``: ``"error"`` (an STS error response), ``"reset"`` (the connection is cut in the
    middle of the response), ``"body"`` (a 200 whose body is ``body``), ``"after-accept"`` (the
    request is judged, and its code marked used, then the answer is lost as a 500).
    """

    status: int = 500
    code: str = "InternalFailure"
    message: str = "injected fault"
    kind: str = "error"
    body: str = ""
    action: str | None = "GetSessionToken"


@dataclasses.dataclass
class Role:
    """A role and its trust policy."""

    arn: str
    max_session: int = 3600  # MaxSessionDuration
    require_mfa: bool = True  # Condition aws:MultiFactorAuthPresent
    external_id: str | None = None  # Condition sts:ExternalId
    trusted: set[str] | None = None  # user names and "role/<name>"s; None: the whole account
    allow_tag_session: bool = True  # sts:TagSession in the trust policy
    allow_source_identity: bool = True  # sts:SetSourceIdentity in the trust policy


@dataclasses.dataclass
class Issued:
    access_key_id: str
    secret: str
    token: str
    expires_at: float
    user: str
    arn: str = ""
    mfa: bool = False
    transitive_tags: dict[str, str] = dataclasses.field(default_factory=dict)
    source_identity: str | None = None
    chained: bool = False  # a role assumed with temporary credentials


@dataclasses.dataclass
class Call:
    action: str
    access_key_id: str
    serial: str | None
    code: str | None
    duration: int | None
    outcome: str
    at: float = 0.0  # the fake's clock when the request arrived
    role: str | None = None  # AssumeRole's RoleArn
    session_name: str | None = None
    signed_with_session: bool = False
    #: AssumeRole's session options as sent: ``tags`` (dict), ``transitive_tag_keys``,
    #: ``source_identity``, ``policy``, ``policy_arns``; getSigninToken's ``session_duration``.
    options: dict[str, Any] = dataclasses.field(default_factory=dict)


ACCOUNT = "123456789012"
#: The IAM user and MFA device a :class:`FakeSts` has when none are given.
DEFAULT_ACCESS_KEY = "AKIAFAKESTSEXAMPLE01"
DEFAULT_SERIAL = f"arn:aws:iam::{ACCOUNT}:mfa/test"


class CallLog(list["Call"]):
    """Every request, in order; ``calls["GetSessionToken"]`` is those of one action."""

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return [call for call in self if call.action == key]
        return super().__getitem__(key)


class FakeSts:
    """STS on 127.0.0.1, strict where it matters: an async context manager.

    ``clock``: the seconds its tokens and codes follow (share a
    :class:`~aio_sts_session.testing.ManualClock` with the provider to cross hours of refresh
    windows in milliseconds); default the wall clock. ``users``: long-term access key id →
    secret (default one user, :attr:`access_key_id`); ``devices``: MFA serial → TOTP secret in
    base32 (default one device, :attr:`mfa_serial`).

    Example::

        async with FakeSts(clock=clock) as sts:
            provider = SessionTokenProvider(
                mfa_serial=sts.mfa_serial,
                mfa_callback=lambda request: sts.code(),
                endpoint_url=sts.url,
                source_session=sts.source_session(),
                clock=clock,
            )
            ...
            assert len(sts.calls["GetSessionToken"]) == 1
    """

    def __init__(
        self,
        clock: Callable[[], float] | None = None,
        *,
        users: dict[str, str] | None = None,
        devices: dict[str, str] | None = None,
    ) -> None:
        self.clock: Callable[[], float] = clock if clock is not None else time.time
        if users is None:
            users = {DEFAULT_ACCESS_KEY: secrets.token_urlsafe(30)}
        if devices is None:
            devices = {DEFAULT_SERIAL: pyotp.random_base32()}
        self.users = dict(users)  # long-term access key id -> secret
        self.user_names: dict[str, str] = {}  # access key id -> IAM user name (default alice)
        self.roles: dict[str, Role] = {}
        self.devices = dict(devices)  # serial -> TOTP base32 secret
        # serial -> the access key id of the user it is assigned to (default: every user's)
        self.device_owner: dict[str, str] = {}
        self.regions = {"us-east-1"}  # the regions whose signatures it accepts
        self.server_offset = 0.0  # STS clock minus ours (skew tests); STS refuses 15 min+
        self.date_header_offset = 0.0  # a Date header off by this much (a proxy's), alone
        self.fault_rate = 0.0  # probability of a 503 on any request (soak tests)
        self.rng = random.Random(0)
        self.duration_cap: int | None = None  # e.g. 3600, as for root
        # The packed size STS allows session tags and policies (None: only the plaintext
        # limits): over it, PackedPolicyTooLarge.
        self.packed_policy_limit: int | None = None
        self.signin_tokens: dict[str, tuple[Issued, float]] = {}  # token -> session, expiry
        self.faults: deque[Fault] = deque()
        self.delay = 0.0  # seconds before answering GetSessionToken (benchmarks)
        self.gate: asyncio.Event | None = None  # when set, GetSessionToken waits for it
        self.arrived = asyncio.Event()  # set when a GetSessionToken request arrives
        self.used_codes: set[tuple[str, str]] = set()
        self.single_use_codes = True  # benchmarks turn this off to reuse codes
        self.issued: dict[str, Issued] = {}
        # IAM: a new access key is refused (InvalidClientTokenId) for this many of its first
        # calls, as IAM's eventual consistency does for a few seconds.
        self.key_activation_calls = 0
        self.pending_keys: dict[str, int] = {}
        self.calls = CallLog()
        self.url = ""
        self._runner: web.AppRunner | None = None

    def __repr__(self) -> str:
        return f"FakeSts({self.url!r}, calls={len(self.calls)})"

    async def __aenter__(self) -> FakeSts:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # -- what a test of a program needs ---------------------------------------------------------

    @property
    def mfa_serial(self) -> str:
        """The (first) MFA device's serial."""
        return next(iter(self.devices))

    @property
    def access_key_id(self) -> str:
        """The (first) IAM user's long-term access key id."""
        return next(iter(self.users))

    @property
    def secret_access_key(self) -> str:
        """The (first) IAM user's long-term secret."""
        return self.users[self.access_key_id]

    def source_session(self) -> Any:
        """An ``AioSession`` holding the (first) user's long-term keys: the provider's
        ``source_session``."""
        from ..integrations.aiobotocore import new_session

        session = new_session()
        session.set_credentials(self.access_key_id, self.secret_access_key)
        return session

    def env(self) -> dict[str, str]:
        """Environment variables that point a program (or the command line) at this fake with
        the (first) user's long-term keys."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
            "AWS_ENDPOINT_URL_STS": self.url,
            "AWS_REGION": "us-east-1",
        }

    def fail(
        self,
        action: str | None = "GetSessionToken",
        *,
        status: int = 503,
        code: str = "ServiceUnavailable",
        message: str = "injected fault",
        times: int = 1,
    ) -> None:
        """The next ``times`` requests for ``action`` (``None``: any) fail with this error;
        botocore retries 5xx and throttling up to four attempts in all."""
        self.faults.extend(Fault(status, code, message, action=action) for _ in range(times))

    # -- test helpers -------------------------------------------------------------------------

    def now(self) -> float:
        return self.clock() + self.server_offset

    def pop_fault(self, action: str) -> Fault | None:
        for fault in self.faults:
            if fault.action is None or fault.action == action:
                self.faults.remove(fault)
                return fault
        if self.fault_rate and self.rng.random() < self.fault_rate:
            return Fault(503, "ServiceUnavailable", "random fault", action=None)
        return None

    def totp(self, serial: str | None = None, offset_steps: int = 0) -> str:
        """The device's code for this 30-second step (or a neighbour's): a phone keeps true
        time, which is STS's."""
        secret = self.devices[serial or self.mfa_serial]
        return str(pyotp.TOTP(secret).at(self.now() + 30 * offset_steps))

    def code(self, serial: str | None = None) -> str:
        """A code STS accepts now and has not seen yet (this step's, else a neighbour's), as a
        person who waits for the next code would type it: what an MFA callback returns."""
        serial = serial or self.mfa_serial
        for step in (0, 1, -1):
            code = self.totp(serial, step)
            if (serial, code) not in self.used_codes:
                return code
        raise AssertionError("no unused TOTP code left in the accepted window")

    fresh_code = code

    def wrong_code(self, serial: str | None = None) -> str:
        """A well-formed code that the device would not accept now."""
        valid = {self.totp(serial, step) for step in (-1, 0, 1)}
        return next(f"{n:06d}" for n in range(1_000_000) if f"{n:06d}" not in valid)

    @property
    def token_calls(self) -> list[Call]:
        return [c for c in self.calls if c.action == "GetSessionToken"]

    @property
    def role_calls(self) -> list[Call]:
        return [c for c in self.calls if c.action == "AssumeRole"]

    @property
    def signin_url(self) -> str:
        """The console's federation endpoint, played by this fake (what
        ``AIO_STS_SESSION_SIGNIN_URL`` points the command line at)."""
        return f"{self.url}/federation"

    def add_role(self, name: str, **options: object) -> str:
        arn = f"arn:aws:iam::123456789012:role/{name}"
        self.roles[arn] = Role(arn, **options)  # type: ignore[arg-type]
        return arn

    def user_name(self, akid: str) -> str:
        return self.user_names.get(akid, "alice")

    def keys_of(self, user: str) -> list[str]:
        return [akid for akid in self.users if self.user_name(akid) == user]

    def _not_active_yet(self, akid: str) -> bool:
        left = self.pending_keys.get(akid, 0)
        if left > 0:
            self.pending_keys[akid] = left - 1
            return True
        return False

    async def _iam(
        self,
        request: web.Request,
        action: str,
        form: dict[str, str],
        akid: str,
        session: Issued | None,
    ) -> web.StreamResponse:
        """IAM's access-key calls, on a session made with MFA (as a typical policy demands)."""
        call = Call(action, akid, None, None, None, "ok")
        self.calls.append(call)
        if session is None or not session.mfa:
            call.outcome = "denied"
            return self._error(403, "AccessDenied", f"MFA is required for iam:{action}")
        user = form.get("UserName") or session.user
        if user != session.user:
            call.outcome = "denied"
            return self._error(403, "AccessDenied", f"not allowed on user {user}")
        fault = self.pop_fault(action)
        if fault is not None:
            call.outcome = f"fault:{fault.code}"
            return await self._fault_response(request, fault)
        if action == "ListAccessKeys":
            members = "".join(
                f"<member><UserName>{user}</UserName><AccessKeyId>{key}</AccessKeyId>"
                "<Status>Active</Status><CreateDate>2026-01-01T00:00:00Z</CreateDate></member>"
                for key in self.keys_of(user)
            )
            return self._xml(
                f'<ListAccessKeysResponse xmlns="{IAM_NS}"><ListAccessKeysResult>'
                f"<AccessKeyMetadata>{members}</AccessKeyMetadata><IsTruncated>false"
                "</IsTruncated></ListAccessKeysResult></ListAccessKeysResponse>"
            )
        if action == "DeleteAccessKey":
            key = form.get("AccessKeyId", "")
            if key not in self.keys_of(user):
                call.outcome = "no-such-key"
                return self._error(
                    404, "NoSuchEntity", f"The Access Key with id {key} cannot be found."
                )
            del self.users[key]
            return self._xml(
                f'<DeleteAccessKeyResponse xmlns="{IAM_NS}"></DeleteAccessKeyResponse>'
            )
        if len(self.keys_of(user)) >= 2:
            call.outcome = "limit"
            return self._error(409, "LimitExceeded", "Cannot exceed quota for AccessKeysPerUser: 2")
        key = "AKIA" + secrets.token_hex(8).upper()
        secret = secrets.token_urlsafe(30)
        self.users[key] = secret
        self.user_names[key] = user
        self.pending_keys[key] = self.key_activation_calls
        return self._xml(
            f'<CreateAccessKeyResponse xmlns="{IAM_NS}"><CreateAccessKeyResult><AccessKey>'
            f"<UserName>{user}</UserName><AccessKeyId>{key}</AccessKeyId><Status>Active</Status>"
            f"<SecretAccessKey>{secret}</SecretAccessKey><CreateDate>2026-01-01T00:00:00Z"
            "</CreateDate></AccessKey></CreateAccessKeyResult></CreateAccessKeyResponse>"
        )

    async def start(self) -> FakeSts:
        app = web.Application()
        app.router.add_post("/", self._handle)
        app.router.add_get("/federation", self._federation)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    # -- protocol -----------------------------------------------------------------------------

    def _xml(self, body: str, status: int = 200) -> web.Response:
        return web.Response(
            status=status,
            body=body.encode(),
            content_type="text/xml",
            headers={
                "Date": email.utils.formatdate(self.now() + self.date_header_offset, usegmt=True)
            },
        )

    def _error(self, status: int, code: str, message: str) -> web.Response:
        kind = "Sender" if status < 500 else "Receiver"
        return self._xml(
            f'<ErrorResponse xmlns="{NS}"><Error><Type>{kind}</Type><Code>{code}</Code>'
            f"<Message>{message}</Message></Error><RequestId>{secrets.token_hex(8)}</RequestId>"
            "</ErrorResponse>",
            status,
        )

    def _verify_signature(
        self, request: web.Request, body: bytes
    ) -> tuple[str, Issued | None] | web.Response:
        """The caller's access key id (and the session it belongs to), or an error response."""
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("AWS4-HMAC-SHA256 "):
            return self._error(400, "MissingAuthenticationToken", "Request is missing auth")
        fields = dict(
            part.strip().split("=", 1) for part in auth[len("AWS4-HMAC-SHA256 ") :].split(",")
        )
        akid, _, scope_region, scope_service = fields["Credential"].split("/")[:4]
        if scope_region not in self.regions:
            return self._error(
                403,
                "SignatureDoesNotMatch",
                f"Credential should be scoped to a valid region, not '{scope_region}'.",
            )
        stamp = request.headers.get("X-Amz-Date", "")
        try:
            signed_at = dt.datetime.strptime(stamp, "%Y%m%dT%H%M%SZ")
        except ValueError:
            return self._error(400, "IncompleteSignature", "X-Amz-Date is missing or malformed")
        signed_epoch = signed_at.replace(tzinfo=dt.timezone.utc).timestamp()
        if abs(signed_epoch - (time.time() + self.server_offset)) > 15 * 60:
            return self._error(
                403,
                "SignatureDoesNotMatch",
                f"Signature expired: {stamp} is now earlier than the allowed time window "
                "(15 minutes around the server's time).",
            )
        signed = fields["SignedHeaders"].split(";")
        token = request.headers.get("X-Amz-Security-Token")
        session: Issued | None = None
        if token is not None:
            session = self.issued.get(token)
            if session is None or session.access_key_id != akid:
                return self._error(403, "InvalidClientTokenId", "The security token is invalid")
            if session.expires_at <= self.now():
                return self._error(403, "ExpiredToken", "The security token has expired")
            secret = session.secret
        else:
            if akid not in self.users or self._not_active_yet(akid):
                return self._error(
                    403, "InvalidClientTokenId", "The security token included is invalid."
                )
            secret = self.users[akid]
        headers = {name: request.headers[name] for name in signed if name in request.headers}
        aws_request = AWSRequest(method="POST", url=str(request.url), data=body, headers=headers)
        aws_request.context["timestamp"] = request.headers["X-Amz-Date"]
        signer = SigV4Auth(Credentials(akid, secret, token), scope_service, scope_region)
        canonical = signer.canonical_request(aws_request)
        expected = signer.signature(signer.string_to_sign(aws_request, canonical), aws_request)
        if not secrets.compare_digest(expected, fields["Signature"]):
            return self._error(403, "SignatureDoesNotMatch", "Signature does not match")
        return akid, session

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        form = {k: v[0] for k, v in urllib.parse.parse_qs(body.decode()).items()}
        action = form.get("Action", "")
        checked = self._verify_signature(request, body)
        if isinstance(checked, web.Response):
            outcome = "bad-signature"
            if "Signature expired" in (checked.text or ""):
                outcome = "signature-expired"
            self.calls.append(Call(action, "?", None, None, None, outcome))
            return checked
        akid, session = checked
        if action == "GetCallerIdentity":
            if session is not None and session.arn:
                arn = session.arn
            else:
                arn = f"arn:aws:iam::123456789012:user/{self.user_name(akid)}"
            call = Call(action, akid, None, None, None, "ok")
            self.calls.append(call)
            fault = self.pop_fault(action)
            if fault is not None:
                call.outcome = f"fault:{fault.code}"
                return await self._fault_response(request, fault)
            return self._xml(
                f'<GetCallerIdentityResponse xmlns="{NS}"><GetCallerIdentityResult>'
                f"<Arn>{arn}</Arn><UserId>{akid}</UserId>"
                "<Account>123456789012</Account></GetCallerIdentityResult>"
                "</GetCallerIdentityResponse>"
            )
        if action == "AssumeRole":
            return await self._assume_role(request, form, akid, session)
        if action in ("CreateAccessKey", "DeleteAccessKey", "ListAccessKeys"):
            return await self._iam(request, action, form, akid, session)
        if action != "GetSessionToken":
            return self._error(400, "InvalidAction", f"Could not find operation {action}")
        return await self._get_session_token(request, form, akid, session)

    async def _get_session_token(
        self, request: web.Request, form: dict[str, str], akid: str, session: Issued | None
    ) -> web.StreamResponse:
        serial, code = form.get("SerialNumber"), form.get("TokenCode")
        duration = int(form.get("DurationSeconds", "43200"))
        call = Call("GetSessionToken", akid, serial, code, duration, "ok", self.now())
        self.calls.append(call)
        self.arrived.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.delay:
            await asyncio.sleep(self.delay)
        fault = self.pop_fault("GetSessionToken")
        after_accept = fault is not None and fault.kind == "after-accept"
        if fault is not None and not after_accept:
            call.outcome = f"fault:{fault.code}" if fault.kind == "error" else f"fault:{fault.kind}"
            return await self._fault_response(request, fault)
        if session is not None:
            call.outcome = "session-credentials"
            return self._error(
                403, "AccessDenied", "Cannot call GetSessionToken with session credentials"
            )
        if not 900 <= duration <= 129600:
            call.outcome = "bad-duration"
            return self._error(400, "ValidationError", "DurationSeconds out of range")
        if serial is not None:
            refused = self._check_code(call, akid, serial, code)
            if refused is not None:
                return refused
        if after_accept:
            assert fault is not None
            call.outcome = "fault:after-accept"
            return self._error(fault.status, fault.code, fault.message)
        if self.duration_cap is not None:
            duration = min(duration, self.duration_cap)
        issued = Issued(
            access_key_id="ASIA" + secrets.token_hex(8).upper(),
            secret=secrets.token_urlsafe(30),
            token=secrets.token_urlsafe(60),
            expires_at=self.now() + duration,
            user=self.user_name(akid),
            mfa=serial is not None,
        )
        self.issued[issued.token] = issued
        return self._xml(
            f'<GetSessionTokenResponse xmlns="{NS}"><GetSessionTokenResult><Credentials>'
            f"<SessionToken>{issued.token}</SessionToken>"
            f"<SecretAccessKey>{issued.secret}</SecretAccessKey>"
            f"<Expiration>{_iso(issued.expires_at)}</Expiration>"
            f"<AccessKeyId>{issued.access_key_id}</AccessKeyId>"
            f"</Credentials></GetSessionTokenResult><ResponseMetadata><RequestId>"
            f"{secrets.token_hex(8)}</RequestId></ResponseMetadata></GetSessionTokenResponse>"
        )

    def _check_code(
        self, call: Call, akid: str, serial: str, code: str | None
    ) -> web.Response | None:
        """``None`` if ``code`` is a valid, unused code of ``serial``'s device, owned by the
        signing user (its code is then used up); else the refusal."""
        device = self.devices.get(serial)
        owner = self.device_owner.get(serial)
        if device is None or (owner is not None and owner != akid):
            call.outcome = "bad-serial"
            return self._error(403, "AccessDenied", BAD_SERIAL)
        if (
            code is None
            or (self.single_use_codes and (serial, code) in self.used_codes)
            or not pyotp.TOTP(device).verify(code, for_time=self.now(), valid_window=1)
        ):
            call.outcome = "bad-code"
            return self._error(403, "AccessDenied", INVALID_CODE)
        self.used_codes.add((serial, code))
        return None

    async def _assume_role(
        self, request: web.Request, form: dict[str, str], akid: str, session: Issued | None
    ) -> web.StreamResponse:
        role_arn, name = form.get("RoleArn", ""), form.get("RoleSessionName", "")
        serial, code = form.get("SerialNumber"), form.get("TokenCode")
        duration = int(form.get("DurationSeconds", "3600"))
        call = Call(
            "AssumeRole",
            akid,
            serial,
            code,
            duration,
            "ok",
            self.now(),
            role=role_arn,
            session_name=name,
            signed_with_session=session is not None,
        )
        call.options = _session_options(form)
        self.calls.append(call)
        fault = self.pop_fault("AssumeRole")
        if fault is not None:
            call.outcome = f"fault:{fault.code}" if fault.kind == "error" else f"fault:{fault.kind}"
            return await self._fault_response(request, fault)
        if not 900 <= duration <= 43200:
            call.outcome = "bad-duration"
            return self._error(400, "ValidationError", "DurationSeconds out of range")
        if session is not None and duration > 3600:
            call.outcome = "chaining-cap"
            return self._error(
                400,
                "ValidationError",
                "The requested DurationSeconds exceeds the 1 hour session limit for roles "
                "assumed by role chaining.",
            )
        # The principal the trust policy judges: the IAM user (or its MFA session), or the
        # role whose credentials sign (role chaining), as "role/<name>".
        if session is not None and ":assumed-role/" in session.arn:
            principal, caller = "role/" + session.arn.split("/")[1], session.arn
        else:
            principal = session.user if session is not None else self.user_name(akid)
            caller = f"arn:aws:iam::123456789012:user/{principal}"
        role = self.roles.get(role_arn)
        denied = self._error(
            403,
            "AccessDenied",
            f"User: {caller} is not authorized to perform: sts:AssumeRole on resource: {role_arn}",
        )
        if role is None:
            call.outcome = "denied"
            return denied
        if duration > role.max_session:
            call.outcome = "too-long"
            return self._error(
                400,
                "ValidationError",
                "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.",
            )
        mfa = session.mfa if session is not None else False
        if serial is not None:
            refused = self._check_code(call, akid, serial, code)
            if refused is not None:
                return refused
            mfa = True
        options = call.options
        if (
            (role.require_mfa and not mfa)
            or (role.external_id is not None and form.get("ExternalId") != role.external_id)
            or (role.trusted is not None and principal not in role.trusted)
            or ("tags" in options and not role.allow_tag_session)
            or ("source_identity" in options and not role.allow_source_identity)
        ):
            call.outcome = "denied"
            return denied
        refused = self._check_session_options(options, session)
        if refused is not None:
            call.outcome = "bad-session-options"
            return refused
        inherited = dict(session.transitive_tags) if session is not None else {}
        tags = options.get("tags", {})
        transitive = {k: tags[k] for k in options.get("transitive_tag_keys", [])}
        role_name = role_arn.rsplit("/", 1)[-1]
        issued = Issued(
            access_key_id="ASIA" + secrets.token_hex(8).upper(),
            secret=secrets.token_urlsafe(30),
            token=secrets.token_urlsafe(60),
            expires_at=self.now() + duration,
            user=session.user if session is not None else self.user_name(akid),
            arn=f"arn:aws:sts::123456789012:assumed-role/{role_name}/{name}",
            mfa=mfa,
            transitive_tags={**inherited, **transitive},
            source_identity=options.get("source_identity")
            or (session.source_identity if session is not None else None),
            chained=session is not None,
        )
        self.issued[issued.token] = issued
        return self._xml(
            f'<AssumeRoleResponse xmlns="{NS}"><AssumeRoleResult><Credentials>'
            f"<SessionToken>{issued.token}</SessionToken>"
            f"<SecretAccessKey>{issued.secret}</SecretAccessKey>"
            f"<Expiration>{_iso(issued.expires_at)}</Expiration>"
            f"<AccessKeyId>{issued.access_key_id}</AccessKeyId></Credentials>"
            f"<AssumedRoleUser><AssumedRoleId>AROAFAKE:{name}</AssumedRoleId>"
            f"<Arn>{issued.arn}</Arn></AssumedRoleUser>"
            f"</AssumeRoleResult><ResponseMetadata><RequestId>{secrets.token_hex(8)}"
            "</RequestId></ResponseMetadata></AssumeRoleResponse>"
        )

    def _check_session_options(
        self, options: dict[str, Any], session: Issued | None
    ) -> web.Response | None:
        """STS's rules for session tags, source identity and session policies."""
        tags: dict[str, str] = options.get("tags", {})
        if len(tags) > 50 or any(not 1 <= len(k) <= 128 or len(v) > 256 for k, v in tags.items()):
            return self._error(400, "ValidationError", "Session tags exceed STS's limits.")
        lowered = {k.lower() for k in tags}
        if any(k.lower() not in lowered for k in options.get("transitive_tag_keys", [])):
            return self._error(
                400, "InvalidParameterValue", "Transitive tag keys must be session tag keys."
            )
        if session is not None:
            if lowered & {k.lower() for k in session.transitive_tags}:
                return self._error(
                    400,
                    "InvalidParameterValue",
                    "A session tag set as transitive earlier in the role chain cannot be set.",
                )
            source = options.get("source_identity")
            if session.source_identity and source and source != session.source_identity:
                return self._error(
                    400, "ValidationError", "The source identity of a role chain cannot change."
                )
        policy_text = len(options.get("policy", "")) + sum(
            len(a) for a in options.get("policy_arns", [])
        )
        if policy_text > 2048:
            return self._error(400, "ValidationError", "Session policies exceed 2048 characters.")
        packed = policy_text + sum(len(k) + len(v) for k, v in tags.items())
        if self.packed_policy_limit is not None and packed > self.packed_policy_limit:
            return self._error(
                400,
                "PackedPolicyTooLarge",
                f"Packed size of session policies and tags exceeds the limit ({packed}).",
            )
        return None

    # -- the console's federation endpoint --------------------------------------------------

    async def _federation(self, request: web.Request) -> web.StreamResponse:
        """``getSigninToken`` (role credentials in, a sign-in token out) and ``login``."""
        query = request.query
        action = query.get("Action", "")
        if action == "login":
            return self._signin(query.get("SigninToken", ""), query.get("Destination", ""))
        call = Call("getSigninToken", "?", None, None, None, "ok", self.now())
        self.calls.append(call)
        if action != "getSigninToken":
            call.outcome = "bad-action"
            return web.Response(status=400, text="unknown Action")
        fault = self.pop_fault("getSigninToken")
        if fault is not None:
            call.outcome = f"fault:{fault.code}"
            return web.Response(status=fault.status, text=fault.message)
        try:
            creds = json.loads(query.get("Session", ""))
            issued = self.issued.get(str(creds["sessionToken"]))
            ok = issued is not None and (
                issued.access_key_id == creds["sessionId"] and issued.secret == creds["sessionKey"]
            )
        except (ValueError, KeyError, TypeError):
            ok, issued = False, None
        if not ok or issued is None or issued.expires_at <= self.now():
            call.outcome = "bad-session"
            return web.Response(status=400, text="invalid or expired session credentials")
        call.access_key_id = issued.access_key_id
        if ":assumed-role/" not in issued.arn:  # GetSessionToken's: the console refuses them
            call.outcome = "not-a-role"
            return web.Response(status=400, text="the console accepts role credentials only")
        lasts = issued.expires_at - self.now()
        raw = query.get("SessionDuration")
        if raw is not None:
            call.options["session_duration"] = raw
            seconds = int(raw) if raw.isdigit() else 0
            cap = 3600 if issued.chained else 43200
            if not 900 <= seconds <= cap:
                call.outcome = "bad-duration"
                return web.Response(status=400, text=f"SessionDuration must be 900..{cap}")
            lasts = seconds
        token = secrets.token_urlsafe(40)
        self.signin_tokens[token] = (issued, self.now() + 900)  # a sign-in token lasts 15 min
        call.options["console_seconds"] = lasts
        return web.json_response({"SigninToken": token})

    def _signin(self, token: str, destination: str) -> web.Response:
        call = Call("login", "?", None, None, None, "ok", self.now())
        self.calls.append(call)
        found = self.signin_tokens.pop(token, None)  # once
        if found is None or found[1] <= self.now():
            call.outcome = "bad-token"
            return web.Response(status=400, text="invalid or expired sign-in token")
        issued = found[0]
        call.access_key_id = issued.access_key_id
        call.options["destination"] = destination
        return web.Response(
            text=f"signed in to the console as {issued.arn}; going to {destination}"
        )

    async def _fault_response(self, request: web.Request, fault: Fault) -> web.StreamResponse:
        if fault.kind == "reset":
            # Headers and half a body, then the connection is cut.
            response = web.StreamResponse(status=200, headers={"Content-Type": "text/xml"})
            response.content_length = 4096
            await response.prepare(request)
            await response.write(b'<GetSessionTokenResponse xmlns="' + NS.encode())
            assert request.transport is not None
            request.transport.close()
            return response
        if fault.kind == "body":
            return self._xml(fault.body)
        return self._error(fault.status, fault.code, fault.message)


def _session_options(form: dict[str, str]) -> dict[str, Any]:
    """AssumeRole's session options from the request's form, as they were sent."""
    options: dict[str, Any] = {}

    def members(prefix: str) -> list[str]:
        found = []
        for n in range(1, 1000):
            if not any(
                key in form for key in (f"{prefix}.{n}", f"{prefix}.{n}.Key", f"{prefix}.{n}.arn")
            ):
                break
            found.append(str(n))
        return found

    tags = {
        form[f"Tags.member.{n}.Key"]: form.get(f"Tags.member.{n}.Value", "")
        for n in members("Tags.member")
    }
    if tags:
        options["tags"] = tags
    transitive = [
        form[f"TransitiveTagKeys.member.{n}"] for n in members("TransitiveTagKeys.member")
    ]
    if transitive:
        options["transitive_tag_keys"] = transitive
    if "SourceIdentity" in form:
        options["source_identity"] = form["SourceIdentity"]
    if "Policy" in form:
        options["policy"] = form["Policy"]
    arns = [form[f"PolicyArns.member.{n}.arn"] for n in members("PolicyArns.member")]
    if arns:
        options["policy_arns"] = arns
    return options


def _iso(epoch: float) -> str:
    stamp = dt.datetime.fromtimestamp(epoch, dt.timezone.utc).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


def issued_secrets(fake: FakeSts) -> list[str]:
    """Every secret the fake handed out (for no-secret-leak checks)."""
    out: list[str] = list(fake.users.values())
    for issued in fake.issued.values():
        out += [issued.secret, issued.token]
    return out
