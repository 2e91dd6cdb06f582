"""The one exception tree of cloudsoc.

Every error a user can meet derives from :class:`CloudsocError`; its message says where and what, and what to
do. Messages never contain secrets: callers pass names of settings, never their values.
"""

from __future__ import annotations


class CloudsocError(Exception):
    """Base of every cloudsoc error."""


class ConfigError(CloudsocError):
    """A configuration file or option is invalid (message carries ``file:line``)."""


class ParseError(CloudsocError):
    """A record cannot be turned into an event; the pipeline dead-letters it with its raw bytes."""

    def __init__(self, reason: str, *, raw: bytes | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.raw = raw


class QueryError(CloudsocError):
    """A search query is malformed; ``position`` is the 0-based character offset of the problem."""

    def __init__(self, message: str, *, query: str = "", position: int = 0) -> None:
        self.message = message
        self.query = query
        self.position = position
        pointer = f"\n  {query}\n  {' ' * position}^" if query else ""
        super().__init__(f"{message} (at position {position}){pointer}")


class StorageError(CloudsocError):
    """The event store cannot be opened or written."""


class StoreLockedError(StorageError):
    """Another process (usually a running ``cloudsoc run``) holds the embedded store for writing."""


class PluginError(CloudsocError):
    """A plugin name is unknown or its module cannot be loaded."""


class InputError(CloudsocError):
    """An input cannot read its source (missing path, unreadable file)."""


class ConsoleError(CloudsocError):
    """A console or HTTP API request cannot be served; ``status`` is the HTTP status the client gets.

    The message goes to the client as it is, so it names what was wrong and never echoes a secret."""

    status = 400

    def __init__(self, message: str, *, status: int | None = None, extra: dict[str, object] | None = None) -> None:
        super().__init__(message)
        self.message = message
        # More for scripts beside the message (a bad query's ``position``), in the JSON error object.
        self.extra = extra or {}
        if status is not None:
            self.status = status


class NotAuthenticated(ConsoleError):
    """No valid session or API token: the API answers 401, pages send the browser to the login form."""

    status = 401


class PermissionDenied(ConsoleError):
    """Authenticated, but the role or token scope lacks the permission (or a CSRF check failed)."""

    status = 403


class BastionError(CloudsocError):
    """The bastion cannot do what was asked: an unknown host or user, a vault without its key, a refused grant.

    Messages reach the SSH user or the operator: they say what to do and never carry a password, key or secret."""


class VaultError(BastionError):
    """The credential vault cannot be opened (missing or wrong key) or a credential is missing."""
