"""A real OpenLDAP slapd on 127.0.0.1 (Debian slapd), configured by the test: alice in cn=ops, bob in no group.

Recipe: ../shared/TEST-SERVERS.md section 2. slapd runs in the foreground (-d 0) so the process is the handle."""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.servers.smtp import free_port

SUFFIX = "dc=example,dc=org"
ADMIN_DN = f"cn=admin,{SUFFIX}"
SLAPD = Path("/usr/sbin/slapd")


def available() -> bool:
    return SLAPD.exists() and shutil.which("ldapadd") is not None and shutil.which("slappasswd") is not None


def _ssha(password: str) -> str:
    return subprocess.run(["slappasswd", "-s", password], check=True, capture_output=True, text=True).stdout.strip()


@dataclass
class LdapServer:
    directory: Path
    users: dict[str, str] = field(default_factory=lambda: {"alice": "alice-pw-7h3", "bob": "bob-pw-k2q"})
    admin_password: str = "admin-pw-x9"
    # OpenSSH public keys per user, in their entry's sshPublicKey (the openssh-lpk schema, written by start()).
    keys: dict[str, list[str]] = field(default_factory=dict)
    # A service account that may read entries (the bastion's, for key log-ins).
    service_password: str = "svc-pw-4r8"
    port: int = 0
    _proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"ldap://127.0.0.1:{self.port}"

    @property
    def service_dn(self) -> str:
        return f"cn=bastion,ou=services,{SUFFIX}"

    def user_dn(self, user: str) -> str:
        return f"uid={user},ou=people,{SUFFIX}"

    def start(self) -> LdapServer:
        d = self.directory
        (d / "db").mkdir(parents=True, exist_ok=True)
        # openssh-lpk, as OpenSSH-LDAP deployments load it (Debian ships no copy of it).
        (d / "openssh-lpk.schema").write_text(
            "attributetype ( 1.3.6.1.4.1.24552.500.1.1.1.13 NAME 'sshPublicKey' DESC 'OpenSSH public key'\n"
            "  EQUALITY octetStringMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.40 )\n"
            "objectclass ( 1.3.6.1.4.1.24552.500.1.1.2.0 NAME 'ldapPublicKey' SUP top AUXILIARY\n"
            "  DESC 'OpenSSH LPK objectclass' MAY ( sshPublicKey $ uid ) )\n"
        )
        schema = "\n".join(f"include /etc/ldap/schema/{x}.schema" for x in ("core", "cosine", "inetorgperson", "nis"))
        schema += f"\ninclude {d}/openssh-lpk.schema"
        (d / "slapd.conf").write_text(
            f"""{schema}
pidfile {d}/slapd.pid
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload memberof
database mdb
maxsize 104857600
suffix "{SUFFIX}"
rootdn "{ADMIN_DN}"
rootpw {_ssha(self.admin_password)}
directory {d}/db
overlay memberof
access to attrs=userPassword by self write by anonymous auth by * none
access to attrs=sshPublicKey by dn.exact="{self.service_dn}" read by self read by * none
access to * by * read
"""
        )
        people = "".join(
            f"""
dn: {self.user_dn(u)}
objectClass: inetOrgPerson
objectClass: ldapPublicKey
uid: {u}
cn: {u}
sn: {u}
userPassword: {_ssha(pw)}
"""
            + "".join(f"sshPublicKey: {k}\n" for k in self.keys.get(u, []))
            for u, pw in self.users.items()
        )
        people += f"""
dn: {self.service_dn}
objectClass: person
cn: bastion
sn: bastion
userPassword: {_ssha(self.service_password)}
"""
        (d / "data.ldif").write_text(
            f"""dn: {SUFFIX}
objectClass: dcObject
objectClass: organization
dc: example
o: Example

dn: ou=people,{SUFFIX}
objectClass: organizationalUnit
ou: people

dn: ou=groups,{SUFFIX}
objectClass: organizationalUnit
ou: groups

dn: ou=services,{SUFFIX}
objectClass: organizationalUnit
ou: services
{people}
dn: cn=ops,ou=groups,{SUFFIX}
objectClass: groupOfNames
cn: ops
member: {self.user_dn("alice")}
"""
        )
        self.port = free_port()
        self._proc = subprocess.Popen(
            [str(SLAPD), "-d", "0", "-h", f"{self.url}/", "-f", str(d / "slapd.conf")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while True:
            ready = subprocess.run(
                ["ldapsearch", "-x", "-H", self.url, "-s", "base", "-b", "", "namingContexts"], capture_output=True
            )
            if ready.returncode == 0:
                break
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"slapd did not start on {self.url}")
            time.sleep(0.1)
        subprocess.run(
            ["ldapadd", "-x", "-H", self.url, "-D", ADMIN_DN, "-w", self.admin_password, "-f", str(d / "data.ldif")],
            check=True,
            capture_output=True,
        )
        return self

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None
