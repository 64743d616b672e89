"""What a role session carries besides its role: session tags, transitive tag keys, a source
identity and session policies.

One value type, :class:`RoleSessionOptions`, made only by :meth:`RoleSessionOptions.checked`,
which holds every value to STS's own limits (AssumeRole's API reference) so that a value STS
would refuse is a :class:`ConfigurationError` naming it before anyone is asked for a code; the
parameters AssumeRole takes (:meth:`~RoleSessionOptions.params`); and the part of the cache
entry's name that keeps a session with other tags or another policy apart
(:meth:`~RoleSessionOptions.key`). :func:`from_profile_settings` reads the same from a
``~/.aws/config`` profile, with the names aws-vault uses.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import unicodedata
from collections.abc import Mapping, Sequence
from typing import Any

from ._text import quote
from .exceptions import ConfigurationError

__all__ = ["PROFILE_KEYS", "RoleSessionOptions", "from_profile_settings"]

#: STS's limits (AssumeRole, "Passing session tags in AWS STS", IAM's tag rules).
MAX_TAGS = 50
MAX_TAG_KEY, MAX_TAG_VALUE = 128, 256
MAX_POLICY_ARNS = 10
#: The plaintext of the inline policy and of the managed policies' ARNs, together.
MAX_POLICY_TEXT = 2048
_TAG_PUNCTUATION = frozenset("_.:/=+-@")
_SOURCE_IDENTITY = re.compile(r"[\w+=,.@-]{2,64}", re.ASCII)
_POLICY_CHARS = re.compile(r"[\t\n\r\x20-\xff]+")
_POLICY_ARN = re.compile(r"arn:aws[a-z-]*:iam::(?:[0-9]{12}|aws):policy/[\w+=,.@/-]{1,2000}")

#: The profile settings read by :func:`from_profile_settings` (aws-vault's names).
PROFILE_KEYS = ("session_tags", "transitive_session_tags", "source_identity")


@dataclasses.dataclass(frozen=True)
class RoleSessionOptions:
    """A role session's tags, transitive tag keys, source identity and session policies,
    checked. Empty (falsy) when none is set."""

    tags: tuple[tuple[str, str], ...] = ()
    transitive_tag_keys: tuple[str, ...] = ()
    source_identity: str | None = None
    policy: str | None = None
    policy_arns: tuple[str, ...] = ()

    @classmethod
    def checked(
        cls,
        role_arn: str,
        *,
        tags: Mapping[str, str] | None = None,
        transitive_tag_keys: Sequence[str] | None = None,
        source_identity: str | None = None,
        policy: str | Mapping[str, Any] | None = None,
        policy_arns: Sequence[str] | None = None,
    ) -> RoleSessionOptions:
        """The options for AssumeRole of ``role_arn``, each held to STS's limits: a
        :class:`ConfigurationError` names the first value STS would refuse."""
        return cls(
            tags=_check_tags(role_arn, tags),
            transitive_tag_keys=_check_transitive(role_arn, tags, transitive_tag_keys),
            source_identity=_check_source_identity(role_arn, source_identity),
            policy=_check_policy(role_arn, policy),
            policy_arns=_check_policy_arns(role_arn, policy, policy_arns),
        )

    def __bool__(self) -> bool:
        return bool(
            self.tags
            or self.transitive_tag_keys
            or self.source_identity is not None
            or self.policy is not None
            or self.policy_arns
        )

    def params(self) -> dict[str, Any]:
        """AssumeRole's parameters, as botocore takes them (it sends ``Tags.member.N.Key``,
        ``TransitiveTagKeys.member.N``, ``PolicyArns.member.N.arn``, …)."""
        params: dict[str, Any] = {}
        if self.tags:
            params["Tags"] = [{"Key": k, "Value": v} for k, v in self.tags]
        if self.transitive_tag_keys:
            params["TransitiveTagKeys"] = list(self.transitive_tag_keys)
        if self.source_identity is not None:
            params["SourceIdentity"] = self.source_identity
        if self.policy is not None:
            params["Policy"] = self.policy
        if self.policy_arns:
            params["PolicyArns"] = [{"arn": arn} for arn in self.policy_arns]
        return params

    def key(self) -> str:
        """What names these options in a cache entry's key: a digest of all of them (the
        same options give the same digest in every process), ``""`` when there are none."""
        if not self:
            return ""
        canonical = json.dumps(dataclasses.asdict(self), sort_keys=True, separators=(",", ":"))
        return "session-options:" + hashlib.sha256(canonical.encode()).hexdigest()

    def describe(self) -> str:
        """For ``describe()`` and messages: the tag keys (not their values), the source
        identity, how many session policies."""
        parts = []
        if self.tags:
            parts.append("session tags " + ", ".join(k for k, _ in self.tags))
        if self.transitive_tag_keys:
            parts.append("transitive " + ", ".join(self.transitive_tag_keys))
        if self.source_identity is not None:
            parts.append(f"source_identity={self.source_identity!r}")
        if self.policy is not None:
            parts.append("an inline session policy")
        if self.policy_arns:
            parts.append(f"{len(self.policy_arns)} managed session policies")
        return "; ".join(parts)


def _tag_text(text: str) -> bool:
    """Letters, digits and spaces of any script, and ``_.:/=+-@`` (STS's tag pattern
    ``[\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]``)."""
    return all(c in _TAG_PUNCTUATION or unicodedata.category(c)[0] in "LZN" for c in text)


def _check_tags(role_arn: str, tags: object) -> tuple[tuple[str, str], ...]:
    if tags is None:
        return ()
    if not isinstance(tags, Mapping):
        raise ConfigurationError(
            f"tags for {role_arn} must be a mapping of tag keys to values, got "
            f"{type(tags).__name__}."
        )
    if len(tags) > MAX_TAGS:
        raise ConfigurationError(
            f"{len(tags)} session tags for {role_arn}: STS takes at most {MAX_TAGS}."
        )
    seen: dict[str, str] = {}
    checked = []
    for key, value in tags.items():
        if not isinstance(key, str) or not 1 <= len(key) <= MAX_TAG_KEY or not _tag_text(key):
            raise ConfigurationError(
                f"Session tag key {quote(key)} for {role_arn}: a key is 1 to {MAX_TAG_KEY} "
                "letters, digits, spaces and _.:/=+-@."
            )
        if key.lower().startswith("aws:"):
            raise ConfigurationError(
                f"Session tag key {quote(key)} for {role_arn}: keys starting with aws: are "
                "reserved by AWS."
            )
        if key.lower() in seen:
            raise ConfigurationError(
                f"Session tag keys {quote(seen[key.lower()])} and {quote(key)} for {role_arn} "
                "differ only in case: STS takes tag keys regardless of case, so keep one."
            )
        if not isinstance(value, str) or len(value) > MAX_TAG_VALUE or not _tag_text(value):
            raise ConfigurationError(
                f"The value of session tag {quote(key)} for {role_arn}: a value is up to "
                f"{MAX_TAG_VALUE} letters, digits, spaces and _.:/=+-@."
            )
        seen[key.lower()] = key
        checked.append((key, value))
    return tuple(checked)


def _check_transitive(role_arn: str, tags: object, keys: object) -> tuple[str, ...]:
    if keys is None:
        return ()
    if isinstance(keys, str) or not isinstance(keys, Sequence):
        raise ConfigurationError(
            f"transitive_tag_keys for {role_arn} must be a list of tag keys, got {quote(keys)}."
        )
    tagged = {k.lower() for k in tags} if isinstance(tags, Mapping) else set()
    for key in keys:
        if not isinstance(key, str) or key.lower() not in tagged:
            raise ConfigurationError(
                f"Transitive tag key {quote(key)} for {role_arn} is not one of its session "
                "tags: a transitive key names a tag passed in the same call (tags=)."
            )
    if len(set(k.lower() for k in keys)) != len(keys):
        raise ConfigurationError(f"transitive_tag_keys for {role_arn} repeats a key.")
    return tuple(keys)


def _check_source_identity(role_arn: str, value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _SOURCE_IDENTITY.fullmatch(value):
        raise ConfigurationError(
            f"source_identity {quote(value)} for {role_arn}: 2 to 64 letters, digits and "
            "+=,.@_- (STS's rule)."
        )
    return value


def _check_policy(role_arn: str, policy: object) -> str | None:
    if policy is None:
        return None
    if isinstance(policy, Mapping):
        policy = json.dumps(policy, separators=(",", ":"))
    if not isinstance(policy, str):
        raise ConfigurationError(
            f"policy for {role_arn} must be a JSON policy document (a str, or a dict), got "
            f"{type(policy).__name__}."
        )
    if not policy.strip() or not _POLICY_CHARS.fullmatch(policy):
        raise ConfigurationError(
            f"The session policy for {role_arn} is empty or holds characters STS refuses "
            "(it takes tab, newline and U+0020 to U+00FF)."
        )
    try:
        document = json.loads(policy)
    except json.JSONDecodeError as exc:
        raise ConfigurationError(
            f"The session policy for {role_arn} is not JSON ({exc.msg} at line {exc.lineno}, "
            f"column {exc.colno})."
        ) from None
    if not isinstance(document, dict):
        raise ConfigurationError(
            f"The session policy for {role_arn} must be a JSON object (a policy document)."
        )
    return policy


def _check_policy_arns(role_arn: str, policy: object, arns: object) -> tuple[str, ...]:
    if arns is None:
        arns = ()
    if isinstance(arns, str) or not isinstance(arns, Sequence):
        raise ConfigurationError(
            f"policy_arns for {role_arn} must be a list of managed policy ARNs, got {quote(arns)}."
        )
    if len(arns) > MAX_POLICY_ARNS:
        raise ConfigurationError(
            f"{len(arns)} managed session policies for {role_arn}: STS takes at most "
            f"{MAX_POLICY_ARNS}."
        )
    for arn in arns:
        if not isinstance(arn, str) or not _POLICY_ARN.fullmatch(arn):
            raise ConfigurationError(
                f"Session policy ARN {quote(arn)} for {role_arn}: a managed policy's ARN is "
                "arn:aws:iam::<account or aws>:policy/<name>."
            )
    text = len(_check_policy(role_arn, policy) or "") + sum(len(a) for a in arns)
    if text > MAX_POLICY_TEXT:
        raise ConfigurationError(
            f"The session policies for {role_arn} are {text} characters (the inline policy "
            f"and the managed policies' ARNs together): STS takes at most {MAX_POLICY_TEXT}."
        )
    return tuple(arns)


def from_profile_settings(profile: str, settings: Mapping[str, Any]) -> dict[str, Any]:
    """The keyword arguments a role profile's settings mean: ``session_tags = k=v, k2=v2``
    (``tags``), ``transitive_session_tags = k, k2`` (``transitive_tag_keys``),
    ``source_identity = name``. Malformed: a :class:`ConfigurationError` naming the profile."""
    out: dict[str, Any] = {}
    raw = settings.get("session_tags")
    if raw is not None:
        tags: dict[str, str] = {}
        for item in _items(raw):
            key, equals, value = item.partition("=")
            if not equals or not key.strip():
                raise ConfigurationError(
                    f"session_tags in profile {quote(profile)}: {quote(item)} is not key=value "
                    "(the setting is key=value, key2=value2)."
                )
            tags[key.strip()] = value.strip()
        out["tags"] = tags
    raw = settings.get("transitive_session_tags")
    if raw is not None:
        out["transitive_tag_keys"] = _items(raw)
    raw = settings.get("source_identity")
    if raw is not None:
        out["source_identity"] = str(raw).strip()
    return out


def _items(raw: object) -> list[str]:
    """A comma-separated setting's items (newlines count as commas: a continued line)."""
    return [item.strip() for item in re.split(r"[,\n]", str(raw)) if item.strip()]
