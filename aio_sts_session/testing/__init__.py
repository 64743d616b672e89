"""Testing a program that uses aio-sts-session, without AWS and without waiting: a strict
fake STS on 127.0.0.1 and a clock the test moves.

``pip install 'aio-sts-session[testing]'`` (it needs ``pyotp`` for the MFA device's codes)::

    from aio_sts_session import SessionTokenProvider
    from aio_sts_session.testing import FakeSts, ManualClock

    async def test_my_service_survives_a_day():
        clock = ManualClock()
        async with FakeSts(clock=clock) as sts:
            provider = SessionTokenProvider(
                mfa_serial=sts.mfa_serial,
                mfa_callback=lambda request: sts.code(),
                endpoint_url=sts.url,
                region_name="us-east-1",
                source_session=sts.source_session(),
                duration_seconds=3600,
                clock=clock,
            )
            async with provider:
                await provider.credentials()
                clock.advance(3600 - 200)  # into the prefetch window
                ...
            assert len(sts.calls["GetSessionToken"]) == 2

See the how-to "Testing your service".
"""

from ._clock import ManualClock
from ._fake_sts import Call, CallLog, FakeSts, Fault, Role, issued_secrets

__all__ = ["Call", "CallLog", "FakeSts", "Fault", "ManualClock", "Role", "issued_secrets"]
