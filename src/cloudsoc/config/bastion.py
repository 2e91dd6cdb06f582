"""The ``bastion:`` section: the SSH bastion's door (allow-list, users, MFA), its hosts and grants, and its audit.

Each part's models are owned by the module that uses them (see docs/specs/bastion.md); this file only gathers
them so the configuration file has one schema."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LdapConfig(_Model):
    """An LDAP directory: users bind as themselves; group membership maps to bastion groups."""

    url: str = Field(..., description="ldap://host:port or ldaps://host:port.")
    user_dn: str = Field(
        ..., description="DN template of a user, `{user}` replaced: uid={user},ou=people,dc=example,dc=org."
    )
    group_base: str = Field("", description="Where groups live (search base); empty: no group look-up.")
    group_filter: str = Field(
        "(member={dn})", description="Filter finding a user's groups; `{dn}` and `{user}` are replaced (escaped)."
    )
    group_attr: str = Field("cn", description="The group attribute that names it.")
    groups: dict[str, str] = Field(
        default_factory=dict, description="LDAP group name → bastion group (only mapped groups count)."
    )
    timeout_secs: float = Field(5.0, gt=0, description="Connect and bind timeout.")
    bind_dn: str = Field(
        "",
        description="A service account for key log-ins: with it the bastion reads a user's public keys "
        "(`key_attr`) and groups without their password. Empty: LDAP users log in with passwords only.",
    )
    bind_password_env: str = Field(
        "CLOUDSOC_LDAP_BIND_PASSWORD", description="Environment variable holding the service account's password."
    )
    key_attr: str = Field("sshPublicKey", description="The attribute holding a user's OpenSSH keys (openssh-lpk).")

    @field_validator("user_dn", "group_filter")
    @classmethod
    def _template(cls, value: str) -> str:
        # A misspelt placeholder would otherwise fail every log-in, at log-in time.
        try:
            value.format(user="u", dn="d")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"{value!r}: the only placeholders are {{user}} and {{dn}} ({exc!r})") from None
        return value


class HostConfig(_Model):
    """A server behind the bastion."""

    address: str = Field(..., description="Address or name the bastion connects to.")
    port: int = Field(22, ge=1, le=65535, description="Its SSH port.")
    labels: dict[str, str] = Field(
        default_factory=dict, description="Free labels shown and filtered on (cloud, account, region, env)."
    )
    groups: list[str] = Field(default_factory=list, description="Host groups the host belongs to.")


class GrantConfig(_Model):
    """Who may reach which hosts as which system users."""

    users: list[str] = Field(default_factory=list, description="Bastion user names.")
    groups: list[str] = Field(default_factory=list, description="Bastion (or mapped LDAP) groups.")
    hosts: list[str] = Field(default_factory=list, description="Host names or host groups (`group:NAME`).")
    system_users: list[str] = Field(..., min_length=1, description="Accounts on the hosts, e.g. [deploy, root].")
    port_forwarding: bool = Field(False, description="Allow -L/-J (direct-tcpip) to these hosts.")


class CommandRuleConfig(_Model):
    """A command filter rule: when a command matches one of its groups, the action applies."""

    name: str = Field("", description="Shown in verdicts and events; default: the rule's position, `config#N`.")
    groups: list[str] = Field(..., min_length=1, description="Command groups (names under command_groups).")
    action: Literal["reject", "warn", "review", "accept"] = Field(
        "reject",
        description="reject: never reaches the host; review: held until a reviewer approves it; warn: runs, "
        "flagged; accept: runs, not flagged.",
    )
    priority: int = Field(50, ge=1, le=100, description="Lower runs first; the first matching rule decides.")
    users: list[str] = Field(default_factory=list, description="Only for these users/groups (empty: everyone).")
    host_groups: list[str] = Field(default_factory=list, description="Only on these host groups (empty: all).")


class CommandGroupConfig(_Model):
    """Commands named by words (matched on the parsed command) or regular expressions (on the whole line)."""

    words: list[str] = Field(
        default_factory=list,
        description="Command names or word sequences matched on the parsed command, e.g. `rm -rf @system`, "
        "`{curl,wget} | sh` (grammar: docs/specs/bastion.md, Command filters).",
    )
    regex: list[str] = Field(default_factory=list, description="Python regular expressions on the command line.")
    risk: Literal["low", "medium", "high", "critical"] = Field("high", description="Risk level of a match.")
    attack: list[str] = Field(default_factory=list, description="MITRE ATT&CK technique ids, e.g. T1485.")
    description: str = Field("", description="What the group catches and why, for the verdict's reason.")


class BastionConfig(_Model):
    """`cloudsoc bastion serve`: one audited SSH door to the company's servers."""

    host: str = Field("0.0.0.0", description="Address to listen on.")
    port: int = Field(2222, ge=1, le=65535, description="SSH port.")
    host_key: Path | None = Field(None, description="The bastion's own host key. Default: <home>/bastion/host_key.")
    allow: list[str] = Field(
        default_factory=lambda: ["127.0.0.0/8", "::1/128"],
        description="Source addresses (CIDR) allowed to connect at all, checked before anything else.",
    )
    user_allow: dict[str, list[str]] = Field(
        default_factory=dict, description="Per-user source ranges that replace `allow` for that user."
    )
    ldap: LdapConfig | None = Field(None, description="An LDAP directory for users besides the local ones.")
    mfa: Literal["required", "optional", "off"] = Field(
        "required", description="TOTP as keyboard-interactive: required for everyone, only for enrolled users, or off."
    )
    mfa_grace_minutes: float = Field(
        10.0, ge=0, description="A new session from the same address and key within this time is not asked again."
    )
    max_failures: int = Field(5, ge=1, description="Failed log-ins before the user is locked out.")
    address_max_failures: int = Field(
        20,
        ge=1,
        description="Failed log-ins from one address (any users) before the address is locked out. Higher than "
        "max_failures: an office or VPN puts many people behind one address.",
    )
    lockout_minutes: float = Field(15.0, gt=0, description="How long a locked-out user or address waits.")
    idle_minutes: float = Field(30.0, gt=0, description="A session without input or output this long is closed.")
    max_session_hours: float = Field(12.0, gt=0, description="A session is closed after this long.")
    vault_key_env: str = Field("CLOUDSOC_VAULT_KEY", description="Environment variable holding the vault key.")
    vault_key_file: Path | None = Field(None, description="Or a file holding it (mode 0600).")
    hosts: dict[str, HostConfig] = Field(default_factory=dict, description="Hosts by name.")
    grants: list[GrantConfig] = Field(default_factory=list, description="Who may open which hosts as whom.")
    command_groups: dict[str, CommandGroupConfig] = Field(
        default_factory=dict, description="Command groups in addition to the built-in high-risk set."
    )
    command_rules: list[CommandRuleConfig] = Field(
        default_factory=list, description="Command rules in addition to the built-in ones."
    )
    builtin_rules: bool = Field(True, description="Apply the built-in high-risk command rules.")
    review_timeout_minutes: float = Field(
        10.0,
        gt=0,
        description="A command a `review` rule holds waits this long for a reviewer (`cloudsoc bastion reviews`, "
        "the console), then is not run.",
    )
