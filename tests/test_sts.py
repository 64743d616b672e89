import pytest

from aio_sts_session import SourceCredentialsError
from aio_sts_session._sts import (
    ErrorKind,
    SourceKeys,
    cap_expiry,
    check_source_keys,
    classify_error,
    correct_for_skew,
)
from aio_sts_session.testing._fake_sts import BAD_SERIAL, INVALID_CODE


@pytest.mark.parametrize(
    ("code", "message", "status", "kind"),
    [
        ("AccessDenied", INVALID_CODE, 403, ErrorKind.CODE_REJECTED),
        ("AccessDenied", BAD_SERIAL, 403, ErrorKind.SERIAL_INVALID),
        (
            "AccessDenied",
            "Cannot call GetSessionToken with session credentials",
            403,
            ErrorKind.SOURCE_TEMPORARY,
        ),
        (
            "AccessDenied",
            "User is not authorized to perform sts:GetSessionToken",
            403,
            ErrorKind.DENIED,
        ),
        (
            "InvalidClientTokenId",
            "The security token included is invalid.",
            403,
            ErrorKind.SOURCE_INVALID,
        ),
        ("SignatureDoesNotMatch", "", 403, ErrorKind.SOURCE_INVALID),
        ("Throttling", "Rate exceeded", 400, ErrorKind.UNAVAILABLE),
        ("InternalFailure", "", 500, ErrorKind.UNAVAILABLE),
        ("Whatever", "", 503, ErrorKind.UNAVAILABLE),
        ("ValidationError", "DurationSeconds", 400, ErrorKind.OTHER),
    ],
)
def test_classify_error(code: str, message: str, status: int, kind: ErrorKind) -> None:
    assert classify_error(code, message, status) is kind


@pytest.mark.parametrize(
    ("expiration", "server_date", "received_at", "expected"),
    [
        (4600.0, 1000.0, 1000.0, (4600.0, 3600.0, 0.0)),  # clocks agree
        (4600.0, 1000.0, 1001.5, (4600.0, 3598.5, 0.0)),  # within tolerance: Date is coarse
        (4600.0, None, 1000.0, (4600.0, 3600.0, 0.0)),  # no Date header
        (4900.0, 1300.0, 1000.0, (4600.0, 3600.0, 300.0)),  # local clock 5 min slow
        (4600.0, 1000.0, 1840.0, (5440.0, 3600.0, -840.0)),  # local clock 14 min fast
        (4600.0, 1000.0, 2000.0, (4600.0, 2600.0, 0.0)),  # 15 min+: STS would refuse such a
        (8200.0, 4600.0, 1000.0, (8200.0, 7200.0, 0.0)),  # request, so Date is not STS's:
        #                                                    ignored
    ],
)
def test_correct_for_skew(
    expiration: float,
    server_date: float | None,
    received_at: float,
    expected: tuple[float, float, float],
) -> None:
    assert correct_for_skew(expiration, server_date, received_at) == expected


def test_source_keys_checks() -> None:
    good = SourceKeys("AKIAEXAMPLE", "s3cr3t-value", None, "env")
    assert check_source_keys(good, "here") is good
    assert "s3cr3t" not in repr(good)
    with pytest.raises(SourceCredentialsError, match="No long-term AWS credentials"):
        check_source_keys(None, "the default credential chain")
    with pytest.raises(SourceCredentialsError, match="temporary") as info:
        check_source_keys(SourceKeys("ASIAEXAMPLE", "s3cr3t-value", "tok3n", "env"), "here")
    assert "s3cr3t" not in str(info.value)
    assert "tok3n" not in str(info.value)


@pytest.mark.parametrize(
    ("expires_in", "requested", "kept"),
    [
        (3600, 3600, 3600),  # what was asked
        (3601.5, 3600, 3601.5),  # within the skew tolerance
        (1800, 3600, 1800),  # shorter (root: one hour): followed
        (3700, 3600, 3600),  # longer than asked: capped
        (100 * 365 * 86400, 43200, 43200),  # a hundred years ahead
        (253402300799 - 1_800_000_000, 900, 900),  # year 9999
    ],
)
def test_cap_expiry(expires_in: float, requested: int, kept: float) -> None:
    now = 1_800_000_000.0
    assert cap_expiry(now + expires_in, now, requested) == now + kept
