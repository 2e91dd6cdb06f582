"""Helpers shared by the cloud-audit parsers (``aws_cloudtrail``, ``aliyun_actiontrail``).

Both trails describe the same thing (who called which API, from where, with what result) in near-identical
shapes, so time, IP, boolean, id, JSON-string, action-classification and MFA rules live here once. Everything is
pure; the caches only memoise pure functions of their arguments.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Callable
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Final
from urllib.parse import unquote

import orjson

from cloudsoc.errors import ParseError

# ------------------------------------------------------------------------------------------------------ time


def utc_timestamp(value: object) -> str:
    """``value`` as the canonical ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` UTC string; ValueError if it is no time.

    Naive times are UTC: both trails write UTC, and Panther-style exports drop the ``Z``.
    """
    if type(value) is str:
        # Fast path: nearly every record carries the trail's own ``2020-09-14T00:44:23Z`` shape. The C
        # ``fromisoformat`` only validates it (month, day, hour ranges); slicing is cheaper than formatting.
        size = len(value)
        if 20 <= size <= 27 and value[-1] == "Z" and value[10] == "T" and value[13] == value[16] == ":":
            if size == 20:
                datetime.fromisoformat(value[:19])
                return value[:19] + ".000000Z"
            fraction = value[20:-1]
            if value[19] == "." and fraction.isdigit():  # 1-6 digits, e.g. Logstash's ``.000Z``
                datetime.fromisoformat(value[:-1])
                return value[:20] + fraction.ljust(6, "0") + "Z"
        moment = datetime.fromisoformat(value)
    elif isinstance(value, datetime):  # YAML loaders turn unquoted times into datetimes
        moment = value
    else:
        raise ValueError(f"not a time string: {type(value).__name__}")
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.isoformat(timespec="microseconds") + "Z"


def bad_time_error(raw: object, key: str) -> ParseError:
    """The ParseError for a time field ``key`` whose value ``raw`` utc_timestamp() rejected."""
    return ParseError(f"unparseable {key}: {_short(raw)}")


def missing_fields_error(record: object, time_key: str, action_key: str) -> ParseError:
    """The ParseError for a record lacking its time or action (or not being an object at all)."""
    if not isinstance(record, dict):
        return ParseError(f"record is not a JSON object (got {type(record).__name__})")
    missing = [k for k in (action_key, time_key) if not record.get(k)]
    reason = "missing " + " and ".join(missing) if missing else f"{action_key} is not a string"
    lowered = action_key.lower()
    if lowered in record:
        # Athena/Snowflake exports lower-case every column; say so instead of a bare "missing".
        reason += f" (found lower-case {lowered!r}: a data-lake export, not a trail record)"
    return ParseError(reason)


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


# -------------------------------------------------------------------------------------------------------- ip


@lru_cache(maxsize=16384)
def normalise_ip(value: str) -> str | None:
    """Canonical text of an IP address, or None when ``value`` is not one (a service name, ``AWS Internal``).

    Cached: a trail sees the same few hundred addresses over and over, and the cache keeps ``ipaddress``
    (slow) off the hot path.
    """
    if ":" in value:
        try:
            v6 = ipaddress.IPv6Address(value)
        except ValueError:
            return None
        mapped = v6.ipv4_mapped
        # An IPv4-mapped address is the IPv4 host; intel and allow-lists are written in dotted quads.
        return str(mapped) if mapped is not None else v6.compressed
    parts = value.split(".")
    if len(parts) != 4:
        return None
    octets = []
    for part in parts:
        # ``ipaddress`` rejects leading zeros (``010.001.002.003``) that real trails do carry; read them
        # as decimal, which is what the services logged. isascii() keeps out Unicode digits int() rejects.
        if not (part.isascii() and part.isdigit()) or len(part) > 3:
            return None
        number = int(part)
        if number > 255:
            return None
        octets.append(str(number))
    return ".".join(octets)


# ---------------------------------------------------------------------------------------------------- values

# Every spelling of a flag seen in the trails, exact first (the common case costs one dict look-up).
_FLAGS: Final[dict[str, bool]] = {
    "true": True,
    "false": False,
    "yes": True,
    "no": False,
    "1": True,
    "0": False,
    "y": True,
    "n": False,
}


def to_bool(value: object) -> bool | None:
    """Read the trails' spellings of a flag (``true``, ``"true"``, ``"Yes"``, ``"False"``), else None."""
    if value is True or value is False:
        return value
    if type(value) is str:
        flag = _FLAGS.get(value)
        return flag if flag is not None else _FLAGS.get(value.strip().lower())
    return None


def text(value: object) -> str | None:
    """A non-empty string for a typed (VARCHAR) column, or None; numbers (ids, some exporters) become str."""
    if type(value) is str:
        return value or None
    if value is None or isinstance(value, bool | dict | list):
        return None
    return str(value)


def stable_id(record: dict[str, Any]) -> str:
    """An id for a record that has none: the SHA-1 of its canonical JSON, so re-ingesting dedups."""
    try:
        canonical = orjson.dumps(record, option=orjson.OPT_SORT_KEYS)
    except TypeError as exc:
        raise ParseError(f"record cannot be serialised to derive an id: {exc}") from None
    return "sha1:" + hashlib.sha1(canonical, usedforsecurity=False).hexdigest()


def error_fields(code: str | None, message: str | None) -> dict[str, str]:
    """ECS ``error`` of a failed call: whichever of the trail's error code and message it wrote."""
    error: dict[str, str] = {}
    if code:
        error["code"] = code
    if message:
        error["message"] = message
    return error


def session_name(arn: object, principal_id: object) -> str | None:
    """The session name of an assumed role: last ARN segment, else the part after ``:`` in principalId."""
    if type(arn) is str and "assumed-role/" in arn:
        return arn.rsplit("/", 1)[1] or None
    if type(principal_id) is str and ":" in principal_id:
        return principal_id.split(":", 1)[1] or None
    return None


# ---------------------------------------------------------------------------------------------- JSON strings

PARSED_SUFFIX: Final = "_parsed"


def _load_json_string(value: str) -> Any:
    """The object/array encoded in ``value`` (plain or URL-encoded JSON), or None if it is not one."""
    first = value[:1]
    if first == "%":
        if value[:3].upper() not in ("%7B", "%5B"):
            return None
        value = unquote(value)
    elif first != "{" and first != "[":
        return None
    try:
        loaded = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    return loaded if isinstance(loaded, dict | list) else None


def _expand_dict(container: dict[str, Any], depth: int) -> dict[str, Any]:
    """``container`` with ``<key>_parsed`` siblings for JSON-string values, down to ``depth`` levels.

    Returns ``container`` itself when nothing was found (the common case: no allocation); otherwise a shallow
    copy, so the caller's record keeps its original strings untouched.
    """
    out = container
    for key, value in container.items():
        kind = type(value)
        if kind is str:
            first = value[:1]
            if first == "{" or first == "[" or first == "%":
                parsed = _load_json_string(value)
                if parsed is not None:
                    if out is container:
                        out = dict(container)
                    out[key + PARSED_SUFFIX] = parsed
        elif kind is dict and depth > 1 and value:
            nested = _expand_dict(value, depth - 1)
            if nested is not value:
                if out is container:
                    out = dict(container)
                out[key] = nested
    return out


def expand_json_strings(record: dict[str, Any], keys: tuple[str, ...], depth: int = 2) -> dict[str, Any]:
    """``record`` with JSON documents hidden in strings (policies, ``requestParameterJson``) parsed beside.

    Only the top-level ``keys`` are looked at: a string value there becomes ``<key>_parsed``; a dict value is
    searched ``depth`` levels deep. Returns ``record`` itself when nothing was expanded.
    """
    out = record
    for key in keys:
        value = record.get(key)
        if value is None:
            continue
        kind = type(value)
        if kind is dict:
            if value:
                expanded = _expand_dict(value, depth)
                if expanded is not value:
                    if out is record:
                        out = dict(record)
                    out[key] = expanded
        elif kind is str:
            parsed = _load_json_string(value)
            if parsed is not None:
                if out is record:
                    out = dict(record)
                out[key + PARSED_SUFFIX] = parsed
    return out


def expand_flat_keys(params: dict[str, Any]) -> dict[str, Any]:
    """Nest dotted keys (``Permissions.1.SourceCidrIp``) as the API meant them: numbered levels are lists.

    ActionTrail logs RPC-style parameters flat. A dotted key that clashes with a value on its path stays flat;
    the caller's nested values are never walked into or changed.
    """
    root = {key: value for key, value in params.items() if "." not in key}
    created: dict[int, dict[str, Any]] = {}  # id -> the dicts built here (the only ones we may change)
    for key, value in params.items():
        if "." not in key:
            continue
        *path, leaf = key.split(".")
        node = root
        clash = False
        for part in path:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
                created[id(child)] = child
            elif id(child) not in created:
                clash = True
                break
            node = child
        if clash or leaf in node:
            root[key] = value
        else:
            node[leaf] = value
    for key, value in root.items():
        if id(value) in created:
            root[key] = _lists_from_numbered(value, created)
    return root


def _lists_from_numbered(node: dict[str, Any], created: dict[int, dict[str, Any]]) -> Any:
    """``node`` (built by expand_flat_keys) with its all-numbered levels turned into lists, in order."""
    for key, value in node.items():
        if id(value) in created:
            node[key] = _lists_from_numbered(value, created)
    if all(key.isascii() and key.isdigit() for key in node):
        return [node[key] for key in sorted(node, key=int)]
    return node


# --------------------------------------------------------------------------------------------------- actions

_READ_PREFIXES: Final = (
    "Get",
    "List",
    "Describe",
    "Head",
    "Lookup",
    "Search",
    "Query",
    "Check",
    "Scan",
    "Select",
    "View",
    "Download",
    "Preview",
    "Estimate",
    "Validate",
    "Simulate",
    "BatchGet",
    "Filter",
    "Decrypt",
    "Inquire",
)
_CREATE_PREFIXES: Final = (
    "Create",
    "Allocate",
    "Import",
    "Register",
    "Run",
    "Launch",
    "Copy",
    "Upload",
    "Issue",
    "Clone",
    "Purchase",
)
_DELETE_PREFIXES: Final = (
    "Delete",
    "Release",
    "Terminate",
    "Deregister",
    "Destroy",
    "Purge",
    "Remove",
    "Cancel",
    "Unsubscribe",
)


@lru_cache(maxsize=8192)
def action_kind(action: str, read_only: bool | None) -> str:
    """``read``, ``creation``, ``deletion`` or ``change`` for an API action.

    The trail's own read/write flag (CloudTrail ``readOnly``, ActionTrail ``eventRW``) wins over the verb.
    """
    if read_only is True or (read_only is None and action.startswith(_READ_PREFIXES)):
        return "read"
    if action.startswith(_CREATE_PREFIXES):
        return "creation"
    if action.startswith(_DELETE_PREFIXES):
        return "deletion"
    return "change"


def action_classifier(
    *,
    sign_in_actions: frozenset[str],
    sign_out_actions: frozenset[str],
    sign_in_event_type: str,
    iam_services: frozenset[str],
    fold_service_case: bool = False,
) -> Callable[[str, str, bool | None, str], tuple[str, tuple[str, ...]]]:
    """A trail's ``(service, action, read_only, event_type) -> (ECS category, ECS types)``.

    The trails differ only in their names for sign-in, sign-out and identity services, so each parser makes
    its own from its tables. ``fold_service_case`` is for ActionTrail, whose ``serviceName`` is capitalised
    (``Ram``). The result is cached: a trail uses a small set of (service, action) pairs, and the cache keeps
    the parser's hot path at one look-up.
    """

    @lru_cache(maxsize=8192)
    def classify(service: str, action: str, read_only: bool | None, event_type: str) -> tuple[str, tuple[str, ...]]:
        if action in sign_out_actions:
            return "authentication", ("end",)
        if action in sign_in_actions or event_type == sign_in_event_type:
            return "authentication", ("start",)
        kind = action_kind(action, read_only)
        if (service.lower() if fold_service_case else service) in iam_services:
            return "iam", iam_types(action, kind)
        if kind == "read":
            return "configuration", ("access",)
        return "configuration", (kind,)

    return classify


def iam_types(action: str, kind: str) -> tuple[str, ...]:
    """ECS ``event.type`` of an identity-service action: the verb, plus ``user``/``group`` for its target."""
    types = ["info" if kind == "read" else kind]
    if "User" in action or "LoginProfile" in action or "AccessKey" in action or "MFADevice" in action:
        types.append("user")
    if "Group" in action:
        types.append("group")
    return tuple(types)


# ------------------------------------------------------------------------------------------------------- mfa


def mfa_used(additional: object, session: object, additional_keys: tuple[str, ...]) -> bool | None:
    """Whether MFA was used, from the sign-in's ``additionalEventData`` flags (``additional_keys``, the trail's
    spellings) and the session's ``attributes.mfaAuthenticated``; None when no source says either way.

    A yes from any source wins: an SSO/federated console login reports no MFA at sign-in while its session
    says ``mfaAuthenticated: true`` (MFA happened at the identity provider).
    """
    seen = False
    if type(additional) is dict:
        for key in additional_keys:
            flag = to_bool(additional.get(key))
            if flag:
                return True
            seen = seen or flag is not None
    if type(session) is dict:
        attributes = session.get("attributes")
        if type(attributes) is dict:
            flag = to_bool(attributes.get("mfaAuthenticated"))
            if flag:
                return True
            seen = seen or flag is not None
    return False if seen else None
