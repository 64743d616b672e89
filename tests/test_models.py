import dataclasses
import datetime as dt

import pytest

from aio_sts_session import CachedToken, MfaRequest, SessionCredentials

UTC = dt.timezone.utc


def creds(**kw: object) -> SessionCredentials:
    base: dict[str, object] = {
        "access_key_id": "ASIAEXAMPLE",
        "secret_access_key": "very-secret-key",
        "session_token": "very-secret-token",
        "expiration": dt.datetime(2030, 1, 1, tzinfo=UTC),
    }
    base.update(kw)
    return SessionCredentials(**base)  # type: ignore[arg-type]


def test_repr_and_str_redact_secrets() -> None:
    c = creds()
    for text in (repr(c), str(c), repr(CachedToken(c, 1.0, 2.0)), f"{c}"):
        assert "very-secret" not in text
        assert "ASIAEXAMPLE" in text


def test_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        creds().access_key_id = "x"  # type: ignore[misc]


def test_expiration_normalised_to_utc() -> None:
    plus2 = dt.timezone(dt.timedelta(hours=2))
    c = creds(expiration=dt.datetime(2030, 1, 1, 2, 0, tzinfo=plus2))
    assert c.expiration == dt.datetime(2030, 1, 1, tzinfo=UTC)
    assert c.expiration.utcoffset() == dt.timedelta(0)


def test_naive_expiration_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        creds(expiration=dt.datetime(2030, 1, 1))


def test_mfa_request_defaults() -> None:
    r = MfaRequest(serial_number="GAHT12345678", attempt=1, max_attempts=3, duration_seconds=900)
    assert r.reason == "initial"
