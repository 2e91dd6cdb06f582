"""The simulated company: people, roles, cloud accounts, AccessKeys, servers, offices and cloud resources.

Everything is drawn from one seeded :class:`random.Random`, so the same seed gives the same company.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from enum import StrEnum

from cloudsoc.demo.ids import IdFactory


class Role(StrEnum):
    DEV = "dev"
    OPS = "ops"
    SECURITY = "security"
    DATA = "data"
    MARKETING = "marketing"
    CUSTOMER_SERVICE = "customer_service"


# (login name, display name). Chinese staff with pinyin logins and staff who go by an English first name.
_NAMES: tuple[tuple[str, str], ...] = (
    ("zhang.wei", "张伟"), ("li.na", "李娜"), ("wang.fang", "王芳"), ("liu.yang", "刘洋"),
    ("chen.jing", "陈静"), ("yang.li", "杨丽"), ("zhao.lei", "赵磊"), ("huang.min", "黄敏"),
    ("zhou.jie", "周杰"), ("wu.xia", "吴霞"), ("xu.ming", "徐明"), ("sun.hao", "孙浩"),
    ("ma.chao", "马超"), ("zhu.lin", "朱琳"), ("hu.bin", "胡斌"), ("guo.qiang", "郭强"),
    ("he.ying", "何颖"), ("lin.tao", "林涛"), ("luo.jun", "罗军"), ("gao.yan", "高燕"),
    ("zheng.kai", "郑凯"), ("liang.yu", "梁雨"), ("song.jia", "宋佳"), ("tang.xin", "唐欣"),
    ("han.lu", "韩璐"), ("feng.rui", "冯瑞"), ("deng.hui", "邓辉"), ("cao.yue", "曹悦"),
    ("alice.chen", "Alice Chen"), ("kevin.wu", "Kevin Wu"), ("emily.zhang", "Emily Zhang"),
    ("jason.li", "Jason Li"), ("vivian.wang", "Vivian Wang"), ("tony.huang", "Tony Huang"),
    ("grace.liu", "Grace Liu"), ("david.lin", "David Lin"), ("cathy.zhou", "Cathy Zhou"),
    ("peter.xu", "Peter Xu"), ("sophie.ma", "Sophie Ma"), ("ryan.guo", "Ryan Guo"),
    ("nina.sun", "Nina Sun"), ("leo.he", "Leo He"), ("amy.zhao", "Amy Zhao"), ("eric.yang", "Eric Yang"),
)  # fmt: skip

# How many people of each role (38 in all).
_HEADCOUNT: tuple[tuple[Role, int], ...] = (
    (Role.DEV, 12),
    (Role.OPS, 5),
    (Role.SECURITY, 2),
    (Role.DATA, 5),
    (Role.MARKETING, 7),
    (Role.CUSTOMER_SERVICE, 7),
)

_BROWSERS: tuple[str, ...] = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/130.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/130.0.0.0 Safari/537.36 Edg/130.0.0.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/129.0.0.0 Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:132.0) Gecko/20100101 Firefox/132.0",
)

_WORKSTATIONS: tuple[tuple[str, str], ...] = (
    # (aws-cli platform part, aliyun-cli platform part)
    ("Darwin/23.6.0 exe/x86_64", "darwin; amd64"),
    ("Darwin/24.1.0 exe/arm64", "darwin; arm64"),
    ("Linux/6.8.0-48-generic exe/x86_64.ubuntu.24", "linux; amd64"),
    ("Windows/10 exe/AMD64", "windows; amd64"),
)


@dataclass(slots=True)
class AccessKey:
    """A long-term AccessKey: who owns it, what it is for and where it is normally used from."""

    key_id: str
    provider: str  # "aliyun" or "aws"
    owner: str  # RAM / IAM user name
    purpose: str  # "personal", "ci", "backup", "monitoring", "attacker"


@dataclass(slots=True)
class Person:
    name: str
    display_name: str
    role: Role
    office: str  # "hangzhou" or "shenzhen"
    ram_principal_id: str
    iam_principal_id: str
    has_ram_user: bool
    has_iam_user: bool
    mfa_aliyun: bool
    mfa_aws: bool
    browser: str
    workstation: tuple[str, str]
    home_ip: str
    ram_key: AccessKey | None = None
    iam_key: AccessKey | None = None
    on_call: bool = False
    joins_on_day: int = 0  # > 0: a new joiner whose users are created that morning


@dataclass(slots=True)
class Server:
    """A machine that calls cloud APIs: its public IP and the identity it calls with."""

    name: str
    provider: str
    region: str
    ip: str
    key: AccessKey | None = None  # long-term key, or None when it uses an instance role
    role_name: str = ""
    role_id: str = ""


@dataclass(slots=True)
class RegionAssets:
    """Resources of one region of one cloud."""

    region: str
    instances: list[str] = field(default_factory=list)
    security_groups: list[str] = field(default_factory=list)
    vpcs: list[str] = field(default_factory=list)
    subnets: list[str] = field(default_factory=list)
    databases: list[str] = field(default_factory=list)
    load_balancers: list[str] = field(default_factory=list)
    images: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Company:
    """The whole simulated company. Build it with :meth:`build`."""

    name: str
    alias: str
    aliyun_account_id: str
    aws_account_id: str
    people: list[Person]
    offices: dict[str, list[str]]
    servers: dict[str, Server]
    aliyun_regions: list[str]
    aws_regions: list[str]
    aliyun_assets: dict[str, RegionAssets]
    aws_assets: dict[str, RegionAssets]
    oss_buckets: dict[str, str]  # bucket -> region
    s3_buckets: dict[str, str]
    aws_roles: dict[str, str]  # role name -> AROA unique id
    aliyun_roles: dict[str, str]  # role name -> role id
    aliyun_trail: str
    aws_trail: str
    leaked_person: str
    attacker_ips: tuple[str, str]
    ack_cluster_id: str

    @property
    def aliyun_home(self) -> str:
        return self.aliyun_regions[0]

    @property
    def aws_home(self) -> str:
        return self.aws_regions[0]

    @property
    def aws_trail_arn(self) -> str:
        return f"arn:aws:cloudtrail:{self.aws_home}:{self.aws_account_id}:trail/{self.aws_trail}"

    def person(self, name: str) -> Person:
        for p in self.people:
            if p.name == name:
                return p
        raise KeyError(name)

    def by_role(self, role: Role) -> list[Person]:
        return [p for p in self.people if p.role is role]

    def access_keys(self) -> list[AccessKey]:
        keys = [k for p in self.people for k in (p.ram_key, p.iam_key) if k is not None]
        keys += [s.key for s in self.servers.values() if s.key is not None]
        return keys

    @classmethod
    def build(cls, rng: random.Random) -> Company:
        ids = IdFactory(rng)
        alias = "lanshan"
        # Office egress: a /28 in Hangzhou (China Telecom Zhejiang) and a /29 for the Shenzhen service centre.
        offices = {
            "hangzhou": [f"115.236.88.{i}" for i in range(97, 111)],
            "shenzhen": [f"183.14.29.{i}" for i in range(33, 39)],
        }
        people = cls._people(rng, ids)
        servers = cls._servers(ids)
        aliyun_regions = ["cn-hangzhou", "cn-shanghai", "ap-southeast-1"]
        aws_regions = ["ap-southeast-1", "us-east-1", "ap-northeast-1"]
        aliyun_assets = {r: cls._aliyun_region(ids, r, n) for r, n in zip(aliyun_regions, (36, 14, 6), strict=True)}
        aws_assets = {r: cls._aws_region(ids, r, n) for r, n in zip(aws_regions, (28, 6, 4), strict=True)}
        devs = [p for p in people if p.role is Role.DEV and p.ram_key and p.iam_key and not p.joins_on_day]
        leaked = rng.choice(devs)
        return cls(
            name="Lanshan Technology (Hangzhou) Co., Ltd.",
            alias=alias,
            aliyun_account_id=ids.aliyun_account_id(),
            aws_account_id=ids.aws_account_id(),
            people=people,
            offices=offices,
            servers=servers,
            aliyun_regions=aliyun_regions,
            aws_regions=aws_regions,
            aliyun_assets=aliyun_assets,
            aws_assets=aws_assets,
            oss_buckets={
                f"{alias}-static": "cn-hangzhou",
                f"{alias}-user-uploads": "cn-hangzhou",
                f"{alias}-backup": "cn-hangzhou",
                f"{alias}-datalake": "cn-shanghai",
                f"{alias}-marketing-assets": "cn-hangzhou",
                f"{alias}-sg-static": "ap-southeast-1",
            },
            s3_buckets={
                f"{alias}-prod-assets": "ap-southeast-1",
                f"{alias}-db-backups": "ap-southeast-1",
                f"{alias}-analytics": "ap-southeast-1",
                f"{alias}-athena-results": "ap-southeast-1",
                f"{alias}-cloudtrail-logs": "us-east-1",
                f"{alias}-tf-state": "ap-southeast-1",
            },
            aws_roles={
                name: ids.aws_unique_id("AROA")
                for name in (
                    "OpsAdmin",
                    "DeveloperReadOnly",
                    "DataAnalyst",
                    "SecurityAudit",
                    "ci-runner",
                    "cw-exporter",
                    "AWSServiceRoleForAutoScaling",
                )
            },
            aliyun_roles={
                name: ids.ram_role_id() for name in ("ops-admin", "ack-node-role", "AliyunServiceRoleForAutoScaling")
            },
            aliyun_trail=f"{alias}-actiontrail",
            aws_trail=f"{alias}-trail",
            leaked_person=leaked.name,
            # Both are on public block lists (hosting providers abroad); neither is used by the company.
            attacker_ips=("45.148.10.240", "193.47.62.69"),
            ack_cluster_id="c" + ids.hex(32),
        )

    @staticmethod
    def _people(rng: random.Random, ids: IdFactory) -> list[Person]:
        total = sum(n for _, n in _HEADCOUNT)
        names = rng.sample(_NAMES, total)
        people: list[Person] = []
        i = 0
        for role, count in _HEADCOUNT:
            for j in range(count):
                login, display = names[i]
                i += 1
                technical = role in (Role.DEV, Role.OPS, Role.SECURITY, Role.DATA)
                careful = role in (Role.OPS, Role.SECURITY)
                # Home broadband: China Telecom / China Unicom dynamic ranges.
                home = rng.choice(("39.183", "112.10", "183.156", "36.27", "125.119", "60.186"))
                p = Person(
                    name=login,
                    display_name=display,
                    role=role,
                    office="shenzhen" if role is Role.CUSTOMER_SERVICE else "hangzhou",
                    ram_principal_id=ids.ram_principal_id(),
                    iam_principal_id=ids.aws_unique_id("AIDA"),
                    has_ram_user=True,
                    has_iam_user=technical,
                    mfa_aliyun=careful or rng.random() < (0.8 if technical else 0.35),
                    mfa_aws=careful or rng.random() < 0.75,
                    browser=rng.choice(_BROWSERS),
                    workstation=rng.choice(_WORKSTATIONS),
                    home_ip=f"{home}.{rng.randint(1, 254)}.{rng.randint(2, 254)}",
                    on_call=role is Role.OPS and j < 3,
                )
                if role in (Role.DEV, Role.OPS, Role.DATA) or (role is Role.SECURITY and j == 0):
                    p.ram_key = AccessKey(ids.ltai(), "aliyun", login, "personal")
                if role in (Role.DEV, Role.OPS, Role.DATA) and (role is not Role.DATA or j < 3):
                    p.iam_key = AccessKey(ids.akia(), "aws", login, "personal")
                people.append(p)
        # The last developer is a new joiner: ops create the RAM and IAM users on the second day.
        joiner = [p for p in people if p.role is Role.DEV][-1]
        joiner.joins_on_day = 1
        return people

    @staticmethod
    def _servers(ids: IdFactory) -> dict[str, Server]:
        def key(provider: str, owner: str, purpose: str) -> AccessKey:
            return AccessKey(ids.ltai() if provider == "aliyun" else ids.akia(), provider, owner, purpose)

        backup_key = key("aliyun", "oss-backup", "backup")
        servers = [
            # Alibaba Cloud ECS EIPs (47.x) in Hangzhou.
            Server("jenkins", "aliyun", "cn-hangzhou", "47.96.231.18", key("aliyun", "ci-deployer", "ci")),
            Server("backup01", "aliyun", "cn-hangzhou", "47.98.180.44", backup_key),
            # The same backup host copies database dumps to S3 with an IAM user's key.
            Server("backup01-s3", "aws", "ap-southeast-1", "47.98.180.44", key("aws", "backup-s3", "backup")),
            Server("zabbix", "aliyun", "cn-hangzhou", "47.97.201.9", key("aliyun", "monitor", "monitoring")),
            Server("ack-node", "aliyun", "cn-hangzhou", "47.110.214.75", role_name="ack-node-role"),
            # AWS EC2 in Singapore: a CI runner and a CloudWatch exporter with instance roles.
            Server("gitlab-runner", "aws", "ap-southeast-1", "54.169.118.203", role_name="ci-runner"),
            Server("cw-exporter", "aws", "ap-southeast-1", "13.228.64.151", role_name="cw-exporter"),
        ]
        return {s.name: s for s in servers}

    @staticmethod
    def _aliyun_region(ids: IdFactory, region: str, n: int) -> RegionAssets:
        z = {"cn-hangzhou": "bp1", "cn-shanghai": "uf6", "ap-southeast-1": "t4n"}[region]
        return RegionAssets(
            region=region,
            instances=[f"i-{z}{ids.lower_alnum(17)}" for _ in range(n)],
            security_groups=[f"sg-{z}{ids.lower_alnum(17)}" for _ in range(max(3, n // 6))],
            vpcs=[f"vpc-{z}{ids.lower_alnum(17)}" for _ in range(2)],
            subnets=[f"vsw-{z}{ids.lower_alnum(17)}" for _ in range(4)],
            databases=[f"rm-{z}{ids.lower_alnum(14)}" for _ in range(max(1, n // 10))],
            load_balancers=[f"lb-{z}{ids.lower_alnum(18)}" for _ in range(max(1, n // 12))],
            images=["aliyun_3_x64_20G_alibase_20240819.vhd", "ubuntu_22_04_x64_20G_alibase_20240710.vhd"],
        )

    @staticmethod
    def _aws_region(ids: IdFactory, region: str, n: int) -> RegionAssets:
        return RegionAssets(
            region=region,
            instances=[f"i-0{ids.hex(16)}" for _ in range(n)],
            security_groups=[f"sg-0{ids.hex(16)}" for _ in range(max(3, n // 5))],
            vpcs=[f"vpc-0{ids.hex(16)}" for _ in range(2)],
            subnets=[f"subnet-0{ids.hex(16)}" for _ in range(4)],
            databases=[f"lanshan-{name}" for name in ("orders-db", "users-db")[: max(1, n // 10)]],
            load_balancers=[f"app/lanshan-web-{i}/{ids.hex(16)}" for i in range(max(1, n // 12))],
            images=[f"ami-0{ids.hex(16)}" for _ in range(2)],
        )
