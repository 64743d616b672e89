"""MFA sessions for the new AWS SDK for Python (``aws-sdk-dynamodb``, ``aws-sdk-bedrock-runtime``,
… built on smithy-python): an identity resolver backed by any provider of this library.

::

    from aio_sts_session import from_profile
    from aio_sts_session.aws_sdk import IdentityResolver

    async with from_profile("work", mfa_callback=ask) as provider:
        config = await AsyncDynamoDBConfig.resolve(
            region="eu-west-1", aws_credentials_identity_resolver=IdentityResolver(provider)
        )
        async with AsyncDynamoDBClient(config=config) as dynamodb:
            await dynamodb.list_tables(ListTablesInput())

Needs Python 3.12+ and ``pip install 'aio-sts-session[aws-sdk]'``. A profile that says
``aio_sts_session = true`` gets the same with ``profile="work"`` alone (see
:class:`ChainProvider`). The how-to: "The new AWS SDK for Python".
"""

from __future__ import annotations

import sys

if sys.version_info < (3, 12):  # pragma: no cover - smithy-python needs 3.12
    raise ImportError(
        "aio_sts_session.aws_sdk is for the new AWS SDK for Python, which needs Python 3.12 or "
        f"newer (this is {sys.version_info.major}.{sys.version_info.minor}); on 3.12+: pip "
        "install 'aio-sts-session[aws-sdk]' and the SDK's service packages (aws-sdk-dynamodb, …)."
    )
try:
    from .integrations.aws_sdk import IdentityResolver
    from .integrations.aws_sdk_chain import OPT_IN, ChainProvider
except ImportError as exc:
    raise ImportError(
        "aio_sts_session.aws_sdk needs smithy-aws-core (the new AWS SDK for Python): pip "
        f"install 'aio-sts-session[aws-sdk]' ({exc})."
    ) from exc

__all__ = ["OPT_IN", "ChainProvider", "IdentityResolver"]
