"""IAM / RAM / OSS / resource policy documents: is it full admin, is it public, whom does a trust policy let in.

Both clouds share the AWS policy grammar (``Statement``, ``Effect``, ``Action``, ``Resource``, ``Principal``,
``Condition``); RAM writes principals as ``{"RAM": ["acs:ram::<account>:root"]}`` and OSS as ``["*"]``.
Documents arrive as objects or as JSON strings (the parsers already put ``<key>_parsed`` beside JSON strings;
anything else, e.g. a URL-encoded document, is decoded here — only for the few events that carry policies).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import unquote

import orjson

_ANY: Final = frozenset({"*", "*:*"})
# Condition keys that pin a "Principal: *" statement to the owner's own organisation, accounts, networks or
# resources: with one of them a wildcard principal is not the public.
_RESTRICTING_KEYS: Final = frozenset(
    {
        "aws:principalorgid",
        "aws:principalorgpaths",
        "aws:principalaccount",
        "aws:principalarn",
        "aws:sourceaccount",
        "aws:sourcearn",
        "aws:sourceowner",
        "aws:sourcevpc",
        "aws:sourcevpce",
        "aws:sourceip",
        "aws:sourceorgid",
        "aws:userid",
        "aws:username",
        "aws:calledvia",
        "kms:calleraccount",
        "kms:viaservice",
        "acs:sourceip",
        "acs:sourcevpc",
        "acs:sourcevpcid",
        "acs:principalrdid",
        "acs:principalaccount",
        "acs:sourcearn",
        "acs:referer",
    }
)
_ACCOUNT_IN_ARN: Final = re.compile(r"^(?:arn:aws[\w-]*:iam::|acs:ram::)(\d{6,20})(?::|$)")


def load(value: object) -> Any:
    """A policy document given as an object or as a (possibly URL-encoded) JSON string; None if it is neither."""
    if isinstance(value, dict | list):
        return value
    if type(value) is not str or not value:
        return None
    text = value.strip()
    if text[:1] == "%":
        text = unquote(text)
    if text[:1] not in ("{", "["):
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return None


def document(params: Mapping[str, Any], *keys: str) -> Any:
    """The first policy document among ``params[key]`` (using the parser's ``<key>_parsed`` when there)."""
    for key in keys:
        parsed = params.get(key + "_parsed")
        if isinstance(parsed, dict | list):
            return parsed
        loaded = load(params.get(key))
        if loaded is not None:
            return loaded
    return None


def statements(policy: object) -> list[dict[str, Any]]:
    if type(policy) is list:  # a bare statement list
        return [s for s in policy if type(s) is dict]
    if type(policy) is not dict:
        return []
    found = policy.get("Statement", policy.get("statement"))
    if type(found) is dict:
        return [found]
    if type(found) is list:
        return [s for s in found if type(s) is dict]
    return []


def _values(value: object) -> list[str]:
    if type(value) is str:
        return [value]
    if type(value) is list:
        return [v for v in value if type(v) is str]
    return []


def _allows(statement: Mapping[str, Any]) -> bool:
    effect = statement.get("Effect", statement.get("effect"))
    return type(effect) is str and effect.lower() == "allow"


def grants_admin(policy: object) -> bool:
    """Whether a statement allows every action (``*`` or ``*:*``) on every resource: full administrator."""
    for statement in statements(policy):
        if not _allows(statement):
            continue
        actions = _values(statement.get("Action", statement.get("action")))
        resources = _values(statement.get("Resource", statement.get("resource")))
        if any(a in _ANY for a in actions) and any(r == "*" for r in resources):
            return True
    return False


def _wildcard_principal(principal: object) -> bool:
    if principal == "*":
        return True
    if type(principal) is list:
        return "*" in principal
    if type(principal) is dict:
        return any("*" in _values(v) for v in principal.values())
    return False


def restricted(statement: Mapping[str, Any]) -> bool:
    """Whether the statement's conditions pin it to known accounts, organisations, networks or resources."""
    condition = statement.get("Condition", statement.get("condition"))
    if type(condition) is not dict:
        return False
    for operator in condition.values():
        if type(operator) is dict and any(type(k) is str and k.lower() in _RESTRICTING_KEYS for k in operator):
            return True
    return False


def public_statements(policy: object) -> list[dict[str, Any]]:
    """The statements that allow anyone (principal ``*``) with no condition restricting who or from where."""
    return [
        s
        for s in statements(policy)
        if _allows(s) and _wildcard_principal(s.get("Principal", s.get("principal"))) and not restricted(s)
    ]


def principal_accounts(policy: object) -> list[str]:
    """Accounts that a trust (or resource) policy's allowing statements let in: account ids, or ``*`` for anyone.

    AWS principals (``123456789012``, ``arn:aws:iam::123456789012:root``/``:role/x``) and RAM principals
    (``acs:ram::1234567890:root``); service and federated principals are not accounts and are skipped.
    """
    found: list[str] = []
    for statement in statements(policy):
        if not _allows(statement):
            continue
        principal = statement.get("Principal", statement.get("principal"))
        if principal == "*":
            found.append("*")
            continue
        if type(principal) is not dict:
            continue
        for kind, value in principal.items():
            if type(kind) is not str or kind.lower() not in ("aws", "ram"):
                continue
            for entry in _values(value):
                account = account_of(entry)
                if account is not None and account not in found:
                    found.append(account)
    return found


def account_of(principal: str) -> str | None:
    """The account id in a principal (``*`` stays ``*``); None when there is none (a service name)."""
    principal = principal.strip()
    if principal == "*":
        return "*"
    if principal.isdigit():
        return principal
    match = _ACCOUNT_IN_ARN.match(principal)
    return match.group(1) if match else None
