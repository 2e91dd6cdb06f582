"""``cloudsoc bastion``: the SSH bastion's users, MFA, vault and hosts (``serve`` and ``sessions`` come beside them).

Everything here writes ``<home>/bastion/bastion.db`` on the bastion's machine. Secrets are never arguments (they
would sit in the shell history): passwords are prompted for or read from stdin, keys read from files."""

from __future__ import annotations

import getpass
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer
from rich.markup import escape
from rich.table import Table

from cloudsoc.cli.alerts import local_time
from cloudsoc.cli.state import fail, home_for, out
from cloudsoc.cli.users import read_password
from cloudsoc.config.bastion import BastionConfig
from cloudsoc.errors import BastionError, CloudsocError

if TYPE_CHECKING:  # the bastion's modules (asyncssh, ldap3, argon2) load when a bastion command runs
    from cloudsoc.bastion.vault import Vault

app = typer.Typer(
    help="The SSH bastion: serve, sessions, reviews, replay, users, MFA, vault, hosts.", no_args_is_help=True
)
users_app = typer.Typer(help="Bastion users: add, list, disable, enable, key-add, unlock.", no_args_is_help=True)
mfa_app = typer.Typer(help="TOTP second factor: enrol, reset.", no_args_is_help=True)
vault_app = typer.Typer(help="Upstream credentials: set, list, delete, keygen.", no_args_is_help=True)
hosts_app = typer.Typer(help="The hosts behind the bastion (from the configuration).", no_args_is_help=True)
app.add_typer(users_app, name="users")
app.add_typer(mfa_app, name="mfa")
app.add_typer(vault_app, name="vault")
app.add_typer(hosts_app, name="hosts")

ConfigOption = Annotated[Path | None, typer.Option("--config", "-c", help="Config file (bastion: section, home).")]
JsonOption = Annotated[bool, typer.Option("--json", help="JSON output for scripts.")]
PromptOption = Annotated[bool, typer.Option("--password-prompt", help="Prompt for a password (typed twice).")]
StdinOption = Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin (one line).")]


def _context(config: Path | None) -> tuple[Path, BastionConfig]:
    from cloudsoc.bastion.gate import db_path

    home, cfg = home_for(config)
    return db_path(home.path), cfg.bastion if cfg is not None else BastionConfig()


def _vault(config: Path | None) -> Vault:
    from cloudsoc.bastion.vault import Vault

    path, cfg = _context(config)
    return Vault(path, key_env=cfg.vault_key_env, key_file=cfg.vault_key_file)


def _password(prompt: bool, stdin: bool) -> str | None:
    return read_password(stdin) if prompt or stdin else None


def _login_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        raise BastionError("cannot tell who you are (no login name): give --by NAME") from None


def _when(ts: float) -> str:
    return local_time(datetime.fromtimestamp(ts, UTC).isoformat())


def _read(path: Path, what: str) -> str:
    try:
        return path.read_text()
    except OSError as exc:
        raise BastionError(f"{path}: cannot read the {what} ({exc.strerror})") from None


# -- users


@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="Login name (letters, digits, . _ @ -).")],
    group: Annotated[list[str] | None, typer.Option("--group", "-g", help="A bastion group (repeatable).")] = None,
    key: Annotated[list[Path] | None, typer.Option("--key", help="An OpenSSH public key file (repeatable).")] = None,
    password_prompt: PromptOption = False,
    password_stdin: StdinOption = False,
    config: ConfigOption = None,
) -> None:
    """Add a local bastion user with groups, public keys and/or a password."""
    from cloudsoc.bastion.directory import LocalDirectory

    try:
        password = _password(password_prompt, password_stdin)
        keys = [_read(k, "public key") for k in key or []]
        path, _ = _context(config)
        directory = LocalDirectory(path)
        directory.add(name, groups=group or [], password=password)
        prints = [directory.add_key(name, line) for text in keys for line in text.splitlines() if line.strip()]
        directory.close()
    except CloudsocError as exc:
        raise fail(exc) from None
    how = ", ".join(filter(None, ["password" if password else "", f"{len(prints)} key(s)" if prints else ""]))
    out.print(f"added {escape(name)} ({how or 'no credential yet'})", highlight=False)


@users_app.command("list")
def users_list(json_out: JsonOption = False, config: ConfigOption = None) -> None:
    """The local bastion users (LDAP users are in LDAP)."""
    from cloudsoc.bastion.directory import LocalDirectory
    from cloudsoc.bastion.mfa import Totp
    from cloudsoc.bastion.vault import Vault

    try:
        path, _ = _context(config)
        directory = LocalDirectory(path)
        users = directory.users()
        totp = Totp(path, Vault(path))
        enrolled = {u.name: totp.enrolled(u.name) for u in users}
        directory.close()
    except CloudsocError as exc:
        raise fail(exc) from None
    if json_out:
        rows = [
            {
                "name": u.name,
                "groups": u.groups,
                "keys": u.keys,
                "password": u.has_password,
                "mfa": enrolled[u.name],
                "disabled": u.disabled,
            }
            for u in users
        ]
        typer.echo(orjson.dumps(rows).decode())
        return
    table = Table("user", "groups", "keys", "password", "MFA", "state", "created")
    for u in users:
        table.add_row(
            escape(u.name),
            escape(", ".join(u.groups)),
            str(len(u.keys)),
            "yes" if u.has_password else "no",
            "enrolled" if enrolled[u.name] else "no",
            "disabled" if u.disabled else "active",
            _when(u.created),
        )
    out.print(table)


def _set_disabled(name: str, disabled: bool, config: Path | None) -> None:
    from cloudsoc.bastion.directory import LocalDirectory

    try:
        path, _ = _context(config)
        directory = LocalDirectory(path)
        directory.set_disabled(name, disabled)
        directory.close()
    except CloudsocError as exc:
        raise fail(exc) from None
    out.print(f"{escape(name)}: {'disabled' if disabled else 'enabled'}", highlight=False)


@users_app.command("disable")
def users_disable(name: Annotated[str, typer.Argument(help="User name.")], config: ConfigOption = None) -> None:
    """Disable a user: no new log-in (running sessions are ended with `bastion sessions kill`)."""
    _set_disabled(name, True, config)


@users_app.command("enable")
def users_enable(name: Annotated[str, typer.Argument(help="User name.")], config: ConfigOption = None) -> None:
    """Enable a disabled user again."""
    _set_disabled(name, False, config)


@users_app.command("key-add")
def users_key_add(
    name: Annotated[str, typer.Argument(help="User name.")],
    key_file: Annotated[Path, typer.Argument(help="OpenSSH public key file (every key line in it is added).")],
    config: ConfigOption = None,
) -> None:
    """Authorize more public keys for a user."""
    from cloudsoc.bastion.directory import LocalDirectory

    try:
        text = _read(key_file, "public key")
        path, _ = _context(config)
        directory = LocalDirectory(path)
        prints = [directory.add_key(name, line) for line in text.splitlines() if line.strip()]
        directory.close()
    except CloudsocError as exc:
        raise fail(exc) from None
    for fp in prints:
        out.print(f"{escape(name)}: key {fp}", highlight=False)


@users_app.command("unlock")
def users_unlock(name: Annotated[str, typer.Argument(help="User name.")], config: ConfigOption = None) -> None:
    """Clear a user's lock-out after failed log-ins."""
    from cloudsoc.bastion.lockout import Lockout

    try:
        path, cfg = _context(config)
        Lockout(path, cfg.max_failures, cfg.lockout_minutes).unlock(name)
    except CloudsocError as exc:
        raise fail(exc) from None
    out.print(f"{escape(name)}: unlocked", highlight=False)


# -- MFA


@mfa_app.command("enrol")
def mfa_enrol(
    name: Annotated[str, typer.Argument(help="User name (local or LDAP).")],
    json_out: Annotated[bool, typer.Option("--json", help="Print only the provisioning URI, as JSON.")] = False,
    config: ConfigOption = None,
) -> None:
    """A new TOTP secret (replacing any): prints the otpauth:// URI and a QR code to scan."""
    from cloudsoc.bastion.mfa import Totp

    try:
        path, _ = _context(config)
        enrolment = Totp(path, _vault(config)).enrol(name)
    except CloudsocError as exc:
        raise fail(exc) from None
    if json_out:
        typer.echo(orjson.dumps({"user": name, "uri": enrolment.uri}).decode())
        return
    typer.echo(enrolment.qr())
    typer.echo(enrolment.uri)
    typer.echo(f"Scan it with an authenticator app; {name}'s next log-in asks for its code.")


@mfa_app.command("reset")
def mfa_reset(name: Annotated[str, typer.Argument(help="User name.")], config: ConfigOption = None) -> None:
    """Remove a user's TOTP secret (a lost phone); enrol again to give a new one."""
    from cloudsoc.bastion.mfa import Totp

    try:
        path, _ = _context(config)
        removed = Totp(path, _vault(config)).reset(name)
    except CloudsocError as exc:
        raise fail(exc) from None
    out.print(f"{escape(name)}: {'TOTP secret removed' if removed else 'was not enrolled'}", highlight=False)


# -- vault


@vault_app.command("set")
def vault_set(
    host: Annotated[str, typer.Argument(help="Host name from bastion.hosts, or * for every host.")],
    system_user: Annotated[str, typer.Argument(help="Account on the host.")],
    key_file: Annotated[Path | None, typer.Option("--key-file", help="Private key file (OpenSSH or PEM).")] = None,
    password_prompt: PromptOption = False,
    password_stdin: StdinOption = False,
    config: ConfigOption = None,
) -> None:
    """Store the credential the bastion logs in upstream with."""
    import asyncssh

    try:
        _, cfg = _context(config)
        if host != "*" and cfg.hosts and host not in cfg.hosts:
            raise BastionError(f"no host {host!r} under bastion.hosts (or use '*' for every host)")
        password = _password(password_prompt, password_stdin)
        private_key = _read(key_file, "private key") if key_file is not None else None
        if private_key is not None:
            try:
                asyncssh.import_private_key(private_key)
            except (asyncssh.KeyImportError, ValueError) as exc:
                raise BastionError(f"{key_file}: not a usable private key without a passphrase ({exc})") from None
        if password is None and private_key is None:
            raise BastionError("give --key-file FILE and/or --password-prompt (or --password-stdin)")
        vault = _vault(config)
        vault.set(host, system_user, password=password, private_key=private_key)
        vault.close()
    except CloudsocError as exc:
        raise fail(exc) from None
    out.print(f"vault: {escape(system_user)}@{escape(host)} stored", highlight=False)


@vault_app.command("list")
def vault_list(json_out: JsonOption = False, config: ConfigOption = None) -> None:
    """What the vault holds (which kinds of secret, never the secrets)."""
    try:
        vault = _vault(config)
        entries = vault.entries()
        vault.close()
    except CloudsocError as exc:
        raise fail(exc) from None
    if json_out:
        rows = [
            {"host": e.host, "system_user": e.system_user, "password": e.password, "private_key": e.private_key}
            for e in entries
        ]
        typer.echo(orjson.dumps(rows).decode())
        return
    table = Table("host", "system user", "password", "private key", "updated")
    for e in entries:
        table.add_row(
            escape(e.host), escape(e.system_user), "yes" if e.password else "-", "yes" if e.private_key else "-",
            _when(e.updated),
        )  # fmt: skip
    out.print(table)


@vault_app.command("delete")
def vault_delete(
    host: Annotated[str, typer.Argument(help="Host name or *.")],
    system_user: Annotated[str, typer.Argument(help="Account on the host.")],
    config: ConfigOption = None,
) -> None:
    """Remove a credential."""
    try:
        removed = _vault(config).delete(host, system_user)
    except CloudsocError as exc:
        raise fail(exc) from None
    out.print(f"vault: {escape(system_user)}@{escape(host)} {'removed' if removed else 'was not there'}")


@vault_app.command("keygen")
def vault_keygen() -> None:
    """Print a new vault key: put it in the environment variable (bastion.vault_key_env) or a 0600 file."""
    from cloudsoc.bastion.vault import new_key

    typer.echo(new_key())


# -- hosts


@hosts_app.command("list")
def hosts_list(json_out: JsonOption = False, config: ConfigOption = None) -> None:
    """The hosts with their labels, groups, and the pinned host key if the bastion has connected yet."""
    from cloudsoc.bastion.hostkeys import HostKeyPins
    from cloudsoc.bastion.inventory import Inventory

    try:
        path, cfg = _context(config)
        Inventory(cfg)  # the grants are checked as the server would check them
        with HostKeyPins(path) as pins:
            pinned = {name: pins.get(h.address, h.port) for name, h in cfg.hosts.items()}
    except CloudsocError as exc:
        raise fail(exc) from None
    hosts = sorted(cfg.hosts.items())
    if json_out:
        rows = [
            {
                "name": name,
                "address": h.address,
                "port": h.port,
                "groups": list(h.groups),
                "labels": dict(h.labels),
                "host_key": pin.fingerprint if (pin := pinned[name]) else None,
            }
            for name, h in hosts
        ]
        typer.echo(orjson.dumps(rows).decode())
        return
    table = Table("host", "address", "groups", "labels", "host key")
    for name, h in hosts:
        pin = pinned[name]
        labels = " ".join(f"{k}={v}" for k, v in sorted(h.labels.items()))
        table.add_row(
            escape(name), escape(f"{h.address}:{h.port}"), escape(", ".join(h.groups)), escape(labels),
            pin.fingerprint if pin else "not pinned yet",
        )  # fmt: skip
    out.print(table)


@hosts_app.command("forget")
def hosts_forget(
    name: Annotated[str, typer.Argument(help="The host's name in the configuration (see `hosts list`).")],
    json_out: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Drop a host's pinned key after the host was rebuilt or re-keyed: the next connection pins the new key.

    Check the new key's fingerprint out of band first (on the host: `ssh-keygen -lf /etc/ssh/ssh_host_*.pub`):
    a changed key is also what an interception looks like."""
    from cloudsoc.bastion.hostkeys import HostKeyPins

    try:
        path, cfg = _context(config)
        host = cfg.hosts.get(name)
        if host is None:
            known = ", ".join(sorted(cfg.hosts)) or "none configured"
            raise BastionError(f"no host {name!r} in the configuration (hosts: {known})")
        with HostKeyPins(path) as pins:
            dropped = pins.forget(host.address, host.port)
    except CloudsocError as exc:
        raise fail(exc) from None
    fingerprint = dropped.fingerprint if dropped is not None else None
    if json_out:
        typer.echo(orjson.dumps({"name": name, "forgotten": fingerprint}).decode())
    elif fingerprint is None:
        out.print(f"{escape(name)}: no key was pinned; the next connection pins one")
    else:
        out.print(f"{escape(name)}: forgot {fingerprint}; the next connection pins the host's current key")


# -- serve, sessions, replay

sessions_app = typer.Typer(help="Bastion sessions: list, kill.", no_args_is_help=True)
app.add_typer(sessions_app, name="sessions")


@app.command("serve")
def serve(
    config: ConfigOption = None,
    host: Annotated[str | None, typer.Option(help="Listen address (default: bastion.host).")] = None,
    port: Annotated[int | None, typer.Option(help="SSH port (default: bastion.port, 2222).")] = None,
    workers: Annotated[
        int, typer.Option(min=1, max=64, help="Processes sharing the port (SO_REUSEPORT); one per core for many users.")
    ] = 1,
) -> None:
    """Serve the bastion: `ssh -p 2222 alice@bastion` (host menu), `alice+web-01@bastion`, or `ssh -J`.

    Sessions are recorded under <home>/bastion/recordings; commands, log-ins and file transfers go to
    <home>/bastion/journal, which `cloudsoc run` stores and runs detection on. SIGTERM/SIGINT close sessions
    cleanly (recordings and the journal are sealed)."""
    import asyncio
    import multiprocessing
    import signal

    from cloudsoc.bastion.server import BastionServer

    try:
        home, cfg_all = home_for(config)
        cfg = cfg_all.bastion if cfg_all is not None else BastionConfig()
        cfg = cfg.model_copy(update={k: v for k, v in (("host", host), ("port", port)) if v is not None})
        # The host key is made before any worker starts, so all of them present the same one.
        BastionServer.from_config(cfg, home.path).host_key()
    except CloudsocError as exc:
        raise fail(exc) from None

    async def run(reuse_port: bool, announce: bool) -> None:
        server = BastionServer.from_config(cfg, home.path)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        bound = await server.start(reuse_port=reuse_port)
        if announce:
            out.print(
                f"bastion listening on {escape(cfg.host)}:{bound} ({workers} worker(s)); "
                f"recordings and journal under {escape(str(home.path / 'bastion'))}; Ctrl-C or SIGTERM stops"
            )
        await stop.wait()
        await server.close()

    children: list[Any] = []
    if workers > 1:
        ctx = multiprocessing.get_context("fork")  # before any event loop or thread of ours exists
        for _ in range(workers - 1):
            child = ctx.Process(target=lambda: asyncio.run(run(True, False)), daemon=False)
            child.start()
            children.append(child)
    try:
        asyncio.run(run(workers > 1, True))
    except OSError as exc:
        raise fail(BastionError(f"cannot listen on {cfg.host}:{cfg.port}: {exc.strerror}")) from None
    finally:
        for child in children:
            if child.pid is not None and child.is_alive():
                os.kill(child.pid, signal.SIGTERM)
        for child in children:
            child.join(15)
    out.print("bastion stopped; recordings and journal sealed")


@sessions_app.command("list")
def sessions_list(
    active: Annotated[bool, typer.Option("--active", help="Only sessions still open.")] = False,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="At most this many, newest first.")] = 50,
    json_out: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Sessions through the bastion, newest first: who, from where, to which host, how long, what happened."""
    from cloudsoc.bastion.sessions import SessionLog

    try:
        home, _cfg = home_for(config)
        with SessionLog(home.path) as log:
            rows = log.list(active=active, limit=limit)
    except CloudsocError as exc:
        raise fail(exc) from None
    if json_out:
        for row in rows:
            typer.echo(orjson.dumps(row, default=str).decode())
        return
    table = Table("session", "user", "from", "host", "as", "kind", "started", "status", "commands")
    for r in rows:
        table.add_row(
            escape(str(r.get("id", ""))), escape(str(r.get("user", ""))), escape(str(r.get("source_ip", ""))),
            escape(str(r.get("target", ""))), escape(str(r.get("system_user", ""))), escape(str(r.get("kind", ""))),
            _when(float(r["started"])) if r.get("started") else "", escape(str(r.get("status", ""))),
            str(r.get("commands", "")),
        )  # fmt: skip
    out.print(table)


@sessions_app.command("kill")
def sessions_kill(
    session_id: Annotated[str, typer.Argument(help="Session id (from `sessions list`).")],
    config: ConfigOption = None,
) -> None:
    """End a live session: the bastion closes it within a second and tells the user why."""
    from cloudsoc.bastion.sessions import SessionLog

    try:
        home, _cfg = home_for(config)
        with SessionLog(home.path) as log:
            killed = log.kill(session_id)
    except CloudsocError as exc:
        raise fail(exc) from None
    if not killed:
        raise fail(BastionError(f"no live session {session_id!r}: see `cloudsoc bastion sessions list --active`"))
    out.print(f"session {escape(session_id)}: kill requested")


reviews_app = typer.Typer(
    help="Commands held for review (rules with action `review`): list, approve, reject.", no_args_is_help=True
)
app.add_typer(reviews_app, name="reviews")


@reviews_app.command("list")
def reviews_list(
    pending: Annotated[bool, typer.Option("--pending", help="Only those still waiting for a decision.")] = False,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="At most this many, newest first.")] = 50,
    json_out: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Review requests, newest first: who asked to run what on which host, and what was decided."""
    from cloudsoc.bastion.reviews import ReviewQueue

    try:
        home, _cfg = home_for(config)
        with ReviewQueue(home.path) as queue:
            rows = queue.list(pending=pending, limit=limit)
    except CloudsocError as exc:
        raise fail(exc) from None
    if json_out:
        for row in rows:
            typer.echo(orjson.dumps(row).decode())
        return
    table = Table("request", "asked", "user", "host", "as", "command", "rule", "status", "by")
    for r in rows:
        table.add_row(
            escape(r["id"]), _when(float(r["requested"])), escape(r["user"]), escape(r["target"]),
            escape(r["system_user"]), escape(r["command"]), escape(r["command_group"] or r["rule"]),
            escape(r["status"]), escape(r["decided_by"] or ""),
        )  # fmt: skip
    out.print(table)


def _decide(review_id: str, approve: bool, note: str, by: str | None, config: Path | None) -> None:
    from cloudsoc.bastion.reviews import ReviewQueue

    try:
        home, _cfg = home_for(config)
        with ReviewQueue(home.path) as queue:
            row = queue.decide(review_id, approve=approve, by=by or _login_name(), note=note)
    except CloudsocError as exc:
        raise fail(exc) from None
    out.print(
        f"request {escape(review_id)} {row['status']}: {escape(row['user'])}@{escape(row['target'])} "
        f"`{escape(row['command'])}` " + ("runs now" if approve else "will not run")
    )


_NOTE = Annotated[str, typer.Option(help="Why (kept with the decision).")]
_BY = Annotated[str | None, typer.Option(help="Reviewer name recorded (default: your login name).")]


@reviews_app.command("approve")
def reviews_approve(
    review_id: Annotated[str, typer.Argument(help="Request id (the user sees it; `reviews list --pending`).")],
    note: _NOTE = "",
    by: _BY = None,
    config: ConfigOption = None,
) -> None:
    """Let a held command run: the waiting session sends it to the host within a second."""
    _decide(review_id, True, note, by, config)


@reviews_app.command("reject")
def reviews_reject(
    review_id: Annotated[str, typer.Argument(help="Request id (`reviews list --pending`).")],
    note: _NOTE = "",
    by: _BY = None,
    config: ConfigOption = None,
) -> None:
    """Refuse a held command: the line is erased on the host and the user is told."""
    _decide(review_id, False, note, by, config)


@app.command("replay")
def replay(
    session_or_path: Annotated[str, typer.Argument(help="A session id, or a recording file (.cast / .cast.gz).")],
    until: Annotated[float | None, typer.Option(help="Show the screen at this many seconds in.")] = None,
    export: Annotated[
        Path | None, typer.Option(help="Write plain asciicast v2 here, for `asciinema play FILE`.")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """The terminal screen of a recording (at its end, or at --until), or the recording exported for asciinema."""
    from cloudsoc.bastion.asciicast import CastReader
    from cloudsoc.bastion.replay import render
    from cloudsoc.bastion.sessions import SessionLog

    try:
        path = Path(session_or_path)
        if not path.exists():
            home, _cfg = home_for(config)
            with SessionLog(home.path) as log:
                row = log.get(session_or_path)
            if row is None or not row.get("recording"):
                raise BastionError(f"{session_or_path}: no such session or file (see `cloudsoc bastion sessions list`)")
            path = Path(str(row["recording"]))
        if export is not None:
            with export.open("wb") as f:
                f.writelines(CastReader(path).v2_lines())
            out.print(f"wrote {escape(str(export))}: play it with `asciinema play {escape(str(export))}`")
            return
        rows = render(path, until)
    except CloudsocError as exc:
        raise fail(exc) from None
    while rows and not rows[-1].strip():
        rows.pop()
    for line in rows:
        typer.echo(line.rstrip())
