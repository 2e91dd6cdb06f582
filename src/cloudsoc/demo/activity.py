"""A week of the company's normal cloud activity: people at work, servers, cloud services acting for it."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cloudsoc.demo.actiontrail import ActionTrailRecords
from cloudsoc.demo.actor import Actor
from cloudsoc.demo.clients import Clients
from cloudsoc.demo.cloudtrail import APIS as AWS_APIS
from cloudsoc.demo.cloudtrail import CloudTrailRecords, aws_date
from cloudsoc.demo.company import AccessKey, Company, Person, Role
from cloudsoc.demo.ids import IdFactory

MINUTE = 60
HOUR = 3600
DAY = 86400
SHANGHAI = 8 * HOUR  # Asia/Shanghai is UTC+8 all year

Mix = tuple[tuple[str, ...], tuple[float, ...]]


def weighted(weights: dict[str, float]) -> Mix:
    """API names with cumulative weights, for ``rng.choices(names, cum_weights=...)``."""
    names = tuple(weights)
    cum: list[float] = []
    total = 0.0
    for name in names:
        total += weights[name]
        cum.append(total)
    return names, tuple(cum)


def local_midnight(t: int) -> int:
    """The epoch of 00:00 Asia/Shanghai on the local day of ``t``."""
    return t - (t + SHANGHAI) % DAY


# --- what each role does on Alibaba Cloud -----------------------------------------------------------------

ALI_DEV_CONSOLE = weighted({
    "DescribeInstances": 10, "DescribeInstanceStatus": 3, "DescribeInstanceAttribute": 4,
    "DescribeSecurityGroups": 2, "DescribeSecurityGroupAttribute": 2, "DescribeLoadBalancers": 3,
    "DescribeHealthStatus": 2, "DescribeDBInstances": 3, "DescribeDBInstanceAttribute": 2, "DescribeSlowLogs": 2,
    "GetLogs": 10, "ListLogStores": 3, "DescribeClustersV1": 2, "DescribeClusterNodes": 2, "DescribeVpcs": 1,
    "DescribeVSwitches": 1, "DescribeMetricList": 4, "GetBucketInfo": 1, "ListObjects": 2, "ListUsers": 0.3,
})  # fmt: skip
ALI_DEV_CLI = weighted({
    "DescribeInstances": 8, "GetObject": 4, "ListObjects": 4, "PutObject": 2, "GetLogs": 6,
    "DescribeClusterDetail": 2, "GetSecretValue": 0.7, "GetCallerIdentity": 1, "DescribeInstanceAttribute": 2,
    "ListUsers": 0.3, "LookupEvents": 0.2,
})  # fmt: skip
ALI_OPS = weighted({
    "DescribeInstances": 10, "DescribeInstanceStatus": 4, "DescribeInstanceAttribute": 4, "DescribeDisks": 2,
    "DescribeSecurityGroups": 3, "DescribeSecurityGroupAttribute": 3, "DescribeImages": 1, "DescribeSnapshots": 1,
    "DescribeEipAddresses": 1, "DescribeVpcs": 1, "DescribeVSwitches": 1, "DescribeLoadBalancers": 2,
    "DescribeHealthStatus": 2, "DescribeDBInstances": 2, "DescribeBackups": 1, "DescribeScalingGroups": 1,
    "DescribeScalingActivities": 1, "DescribeMetricList": 4, "DescribeClusterDetail": 1, "DescribeClusterNodes": 2,
    "GetLogs": 4, "DescribeInstanceHistoryEvents": 1, "StartInstance": 0.3, "StopInstance": 0.3,
    "RebootInstance": 0.4, "ModifyInstanceAttribute": 0.3, "ListUsers": 0.5, "GetUser": 0.3, "DescribeKeyPairs": 0.5,
})  # fmt: skip
ALI_SECURITY = weighted({
    "LookupEvents": 8, "DescribeTrails": 2, "GetTrailStatus": 2, "ListUsers": 3, "GetUser": 2, "ListAccessKeys": 3,
    "ListPoliciesForUser": 3, "GetLoginProfile": 1, "ListRoles": 1, "ListPolicies": 1, "DescribeSuspEvents": 4,
    "DescribeCloudCenterInstances": 2, "DescribeSecurityGroups": 2, "DescribeSecurityGroupAttribute": 3,
    "GetBucketAcl": 2, "GetBucketInfo": 1, "DescribeInstances": 2,
})  # fmt: skip
ALI_DATA = weighted({
    "ListObjects": 6, "GetObject": 6, "PutObject": 3, "GetBucketInfo": 1, "DescribeDBInstances": 2,
    "DescribeDBInstanceAttribute": 1, "DescribeSlowLogs": 2, "GetLogs": 3, "ListUsers": 0.2,
})  # fmt: skip
ALI_MARKETING = weighted({
    "ListObjects": 5, "PutObject": 4, "GetObject": 2, "GetBucketInfo": 2, "GetService": 1, "RefreshObjectCaches": 2,
    "DescribeRefreshTasks": 2, "DescribeCdnDomainDetail": 2, "DescribeInstances": 0.3,
})  # fmt: skip
ALI_SERVICE_DESK = weighted({
    "GetLogs": 10, "ListLogStores": 2, "GetObject": 3, "ListObjects": 2, "DescribeInstances": 0.2,
    "DescribeDBInstances": 0.2,
})  # fmt: skip

# Calls a role's RAM policy does not allow (they come back NoPermission / Forbidden.RAM / AccessDenied).
ALI_DENIED: dict[Role, frozenset[str]] = {
    Role.DEV: frozenset({"ListUsers", "LookupEvents", "GetSecretValue"}),
    Role.OPS: frozenset(),
    Role.SECURITY: frozenset(),
    Role.DATA: frozenset({"ListUsers"}),
    Role.MARKETING: frozenset({"DescribeInstances"}),
    Role.CUSTOMER_SERVICE: frozenset({"DescribeInstances", "DescribeDBInstances"}),
}

# --- and on AWS ----------------------------------------------------------------------------------------

AWS_DEV_CONSOLE = weighted({
    "DescribeInstances": 6, "DescribeSecurityGroups": 2, "DescribeVolumes": 1, "DescribeInstanceStatus": 2,
    "DescribeLogGroups": 4, "DescribeLogStreams": 4, "ListFunctions20150331": 3, "GetFunction20150331v2": 2,
    "DescribeDBInstances": 2, "DescribeServices": 3, "DescribeClusters": 1, "DescribeLoadBalancers": 1,
    "DescribeTargetHealth": 2, "DescribeTargetGroups": 1, "ListBuckets": 1, "GetBucketLocation": 1,
    "DescribeAlarms": 1, "ListAliases": 0.3, "ListUsers": 0.3,
})  # fmt: skip
AWS_DEV_CLI = weighted({
    "GetCallerIdentity": 2, "ListBuckets": 2, "GetBucketLocation": 1, "DescribeInstances": 3, "DescribeLogGroups": 2,
    "DescribeLogStreams": 2, "GetAuthorizationToken": 2, "DescribeRepositories": 1, "DescribeServices": 2,
    "ListFunctions20150331": 1, "ListUsers": 0.3, "ListRoles": 0.2,
})  # fmt: skip
AWS_OPS = weighted({
    "DescribeInstances": 8, "DescribeInstanceStatus": 3, "DescribeSecurityGroups": 3, "DescribeVolumes": 2,
    "DescribeSubnets": 1, "DescribeVpcs": 1, "DescribeImages": 1, "DescribeAddresses": 1, "DescribeKeyPairs": 1,
    "DescribeSnapshots": 1, "DescribeLaunchTemplates": 1, "DescribeAutoScalingGroups": 2, "DescribeLoadBalancers": 2,
    "DescribeTargetHealth": 2, "DescribeTargetGroups": 1, "DescribeDBInstances": 2, "DescribeDBSnapshots": 1,
    "DescribeAlarms": 2, "GetMetricData": 2, "DescribeServices": 2, "DescribeClusters": 1, "DescribeLogGroups": 1,
    "ListUsers": 1, "GetUser": 0.5, "ListRoles": 0.5, "GetRole": 0.5, "StartInstances": 0.2, "StopInstances": 0.2,
    "RebootInstances": 0.3, "CreateTags": 0.5, "GetCostAndUsage": 0.3, "ListAliases": 0.3,
})  # fmt: skip
AWS_SECURITY = weighted({
    "LookupEvents": 8, "DescribeTrails": 2, "GetTrailStatus": 2, "GetEventSelectors": 1, "ListDetectors": 1,
    "ListFindings": 4, "GetFindings": 3, "ListUsers": 3, "GetUser": 2, "ListAccessKeys": 3,
    "ListAttachedUserPolicies": 2, "ListMFADevices": 2, "GetCredentialReport": 1, "GetAccountPasswordPolicy": 1,
    "GetAccountSummary": 1, "ListRoles": 1, "GetBucketPolicy": 2, "GetBucketAcl": 2, "GetBucketPublicAccessBlock": 2,
    "DescribeSecurityGroups": 3,
})  # fmt: skip
AWS_DENIED: dict[Role, frozenset[str]] = {
    Role.DEV: frozenset({"ListUsers", "ListRoles", "GetAccountSummary"}),
    Role.DATA: frozenset({"DescribeInstances"}),
}

# A `terraform plan` reads everything it manages, in a tight burst.
ALI_TERRAFORM = (
    ["DescribeRegions", "DescribeVpcs", "DescribeVSwitches", "DescribeVSwitches", "DescribeSecurityGroups"]
    + ["DescribeSecurityGroupAttribute"] * 5
    + ["DescribeInstances"]
    + ["DescribeInstanceAttribute"] * 12
    + ["DescribeDisks", "DescribeLoadBalancers", "DescribeDBInstances", "DescribeDBInstanceAttribute"]
    + ["GetBucketInfo", "GetBucketAcl"] * 4
    + ["GetUser", "ListPoliciesForUser"] * 3
)
AWS_TERRAFORM = (
    ["GetCallerIdentity", "DescribeVpcs", "DescribeSubnets", "DescribeSubnets", "DescribeSecurityGroups"]
    + ["DescribeInstances"] * 8
    + ["DescribeImages", "DescribeLaunchTemplates", "DescribeAutoScalingGroups", "DescribeLoadBalancers"]
    + ["DescribeTargetGroups", "DescribeDBInstances"]
    + ["GetRole"] * 5
    + ["GetBucketPolicy", "GetBucketAcl", "GetBucketVersioning", "GetBucketEncryption", "GetBucketPublicAccessBlock"]
    * 4
)


@dataclass(slots=True)
class KeyRotation:
    """A person's keys were leaked: unusable from ``disabled_at``; new keys from ``rotated_at``."""

    disabled_at: int
    rotated_at: int
    ram_key: str
    iam_key: str


class NormalActivity:
    """Emits the normal records of every local day between ``start`` and ``end`` (epoch seconds)."""

    def __init__(
        self,
        company: Company,
        actiontrail: ActionTrailRecords,
        cloudtrail: CloudTrailRecords,
        ids: IdFactory,
        rng: random.Random,
        start: int,
        end: int,
    ) -> None:
        self.c = company
        self.at = actiontrail
        self.ct = cloudtrail
        self.ids = ids
        self.rng = rng
        self.start = start
        self.end = end
        self.rotations: dict[str, KeyRotation] = {}
        self.days = list(range(local_midnight(start), end, DAY))
        self._console: dict[tuple[str, str], Actor] = {}  # (cloud, person) -> today's console session
        s = company.servers
        self.zabbix = self.at.ram_user_key(
            "monitor", self.ids.ram_principal_id(), self._key(s["zabbix"]), s["zabbix"].ip, Clients.ALIYUN_JAVA
        )
        self.jenkins = self.at.ram_user_key(
            "ci-deployer", self.ids.ram_principal_id(), self._key(s["jenkins"]), s["jenkins"].ip, Clients.ALIYUN_PYTHON
        )
        self.backup = self.at.ram_user_key(
            "oss-backup",
            self.ids.ram_principal_id(),
            self._key(s["backup01"]),
            s["backup01"].ip,
            Clients.ALIYUN_OSSUTIL,
        )
        self.backup_s3 = self.ct.iam_user_key(
            "backup-s3", self.ids.aws_unique_id("AIDA"), self._key(s["backup01-s3"]), s["backup01-s3"].ip, ""
        )
        self.runner_instance = company.aws_assets[company.aws_home].instances[0]
        self.exporter_instance = company.aws_assets[company.aws_home].instances[1]
        self.ack_instance = company.aliyun_assets[company.aliyun_home].instances[0]

    @staticmethod
    def _key(server: Any) -> str:
        assert server.key is not None
        return str(server.key.key_id)

    # --- the week ------------------------------------------------------------------------------------

    def run(self) -> None:
        on_call = [p for p in self.c.people if p.on_call]
        for i, day0 in enumerate(self.days):
            weekday = time.gmtime(day0 + SHANGHAI).tm_wday
            self._console.clear()
            for p in self.c.people:
                self._person_day(p, i, day0, weekday)
            self._servers_day(day0, weekday)
            self._cloud_services_day(day0, weekday)
            self._night_shift(on_call[(i // 7) % len(on_call)], day0)
            self._home_script(day0)
        self._main_accounts()
        self._onboarding()

    # --- people --------------------------------------------------------------------------------------

    def _person_day(self, p: Person, i: int, day0: int, weekday: int) -> None:
        rng = self.rng
        if p.joins_on_day > i:
            return
        if weekday < 5:
            if rng.random() > 0.93:
                return  # on leave
            ip = self.c.offices[p.office][rng.randrange(3)]  # the NAT gateway mostly uses three addresses
            arrive = day0 + 9 * HOUR + rng.randint(-30 * MINUTE, 75 * MINUTE)
            leave = day0 + 18 * HOUR + rng.randint(0, 150 * MINUTE)
            if p.joins_on_day == i:
                arrive = day0 + 14 * HOUR
        else:
            if p.role in (Role.MARKETING, Role.CUSTOMER_SERVICE) or rng.random() > 0.12:
                return
            ip = p.home_ip
            arrive = day0 + rng.randint(10, 20) * HOUR
            leave = arrive + rng.randint(20, 90) * MINUTE
        work = _Workday(self, p, ip, arrive, leave, weekend=weekday >= 5)
        {
            Role.DEV: work.developer,
            Role.OPS: work.operations,
            Role.SECURITY: work.security,
            Role.DATA: work.data,
            Role.MARKETING: work.marketing,
            Role.CUSTOMER_SERVICE: work.service_desk,
        }[p.role]()

    def _home_script(self, day0: int) -> None:
        """The developer whose keys leak runs a script with both personal keys on a machine at home every
        morning, weekends too — how keys end up on disks they leak from. So the keys are in use from the
        first day whatever weekday the week starts on, and their baseline has outlived its learning period
        when the attack comes (otherwise a week starting on a Friday left the key unknown until Monday)."""
        t = day0 + 7 * HOUR + self.rng.randint(0, 20 * MINUTE)
        if t < self.start:
            return
        p = self.c.person(self.c.leaked_person)
        work = _Workday(self, p, p.home_ip, t, t + 10 * MINUTE, weekend=True)
        ali = work.aliyun_key(t, Clients.ALIYUN_PYTHON)
        if ali is not None:
            for name in ("DescribeInstances", "DescribeInstanceStatus"):
                self.at.call(t, ali, name, self.c.aliyun_home)
                t += self.rng.randint(1, 3)
        aws = work.aws_key(t, Clients.AWS_BOTO3)
        if aws is not None:
            for name in ("DescribeInstances", "DescribeInstanceStatus"):
                self.ct.call(t, aws, name, self.c.aws_home, user_agent=Clients.AWS_BOTO3)
                t += self.rng.randint(1, 3)

    def _night_shift(self, p: Person, day0: int) -> None:
        """Ops on call: some nights an alert wakes them and they log in from home."""
        rng = self.rng
        if rng.random() > 0.35:
            return
        t = day0 + rng.randint(30 * MINUTE, 5 * HOUR)
        work = _Workday(self, p, p.home_ip, t, t + HOUR, weekend=True)
        if rng.random() < 0.7:
            actor = work.aliyun_console(t)
            t = work.aliyun_calls(actor, t + 20, ALI_OPS, rng.randint(8, 25))
            if rng.random() < 0.5:
                self.at.call(t + 30, actor, "RebootInstance", self.c.aliyun_home)
        else:
            actor = work.aws_console(t)
            t = work.aws_calls(actor, t + 20, AWS_OPS, rng.randint(8, 25))
            if rng.random() < 0.5:
                self.ct.call(t + 30, actor, "RebootInstances", self.c.aws_home)

    def _main_accounts(self) -> None:
        """The main accounts are rarely used: one sign-in each in the week, by the head of ops, with MFA."""
        if len(self.days) < 4:
            return
        ops_lead = self.c.by_role(Role.OPS)[0]
        t = self.days[2] + 10 * HOUR + self.rng.randint(0, 40 * MINUTE)
        ua = ops_lead.browser
        _, root = self.at.console_signin(t, None, self.c.offices["hangzhou"][0], ua)
        for k, name in enumerate(("DescribeRegions", "ListUsers", "GetService")):
            self.at.call(t + 30 + 20 * k, root, name, self.c.aliyun_home)
        t = self.days[3] + 11 * HOUR + self.rng.randint(0, 40 * MINUTE)
        _, aws_root = self.ct.console_login(t, None, self.c.offices["hangzhou"][0], ua)
        for k in range(3):
            self.ct.call(t + 40 + 25 * k, aws_root, "GetCostAndUsage", "us-east-1")
        self.ct.call(t + 150, aws_root, "GetAccountSummary", "us-east-1")

    def _onboarding(self) -> None:
        """Ops create the RAM and IAM users of the new joiner on the morning of their first day."""
        joiners = [p for p in self.c.people if p.joins_on_day]
        ops = self.c.by_role(Role.OPS)[1]
        for p in joiners:
            if p.joins_on_day >= len(self.days):
                continue
            day0 = self.days[p.joins_on_day]
            t = day0 + 10 * HOUR + self.rng.randint(0, 30 * MINUTE)
            ip = self.c.offices["hangzhou"][0]
            work = _Workday(self, ops, ip, t, t + HOUR, weekend=False)
            actor = work.aliyun_console(t)
            t += 60
            for name, params in (
                ("CreateUser", {"UserName": p.name, "DisplayName": p.display_name, "Email": f"{p.name}@lanshan.tech"}),
                (
                    "CreateLoginProfile",
                    {"UserName": p.name, "PasswordResetRequired": "true", "MFABindRequired": "true"},
                ),
                ("AddUserToGroup", {"GroupName": "developers", "UserName": p.name}),
                (
                    "AttachPolicyToUser",
                    {"PolicyType": "System", "PolicyName": "AliyunECSReadOnlyAccess", "UserName": p.name},
                ),
                (
                    "AttachPolicyToUser",
                    {"PolicyType": "System", "PolicyName": "AliyunLogReadOnlyAccess", "UserName": p.name},
                ),
            ):
                self.at.call(t, actor, name, self.c.aliyun_home, params=params, resources=[p.name])
                t += self.rng.randint(8, 40)
            if p.ram_key is not None:
                self.at.call(
                    t,
                    actor,
                    "CreateAccessKey",
                    self.c.aliyun_home,
                    params={"UserName": p.name},
                    resources=[p.name],
                    response={"AccessKey": {"AccessKeyId": p.ram_key.key_id, "Status": "Active"}},
                )
            t += 300
            aws = work.aws_console(t)
            t += 60
            user_arn = self.ct.user_arn(p.name)
            self.ct.call(
                t,
                aws,
                "CreateUser",
                "us-east-1",
                params={"userName": p.name, "tags": [{"key": "team", "value": "dev"}]},
                response={
                    "user": {
                        "path": "/",
                        "userName": p.name,
                        "userId": p.iam_principal_id,
                        "arn": user_arn,
                        "createDate": aws_date(t),
                    }
                },
            )
            iam_calls: tuple[tuple[str, dict[str, Any]], ...] = (
                ("CreateLoginProfile", {"userName": p.name, "passwordResetRequired": True}),
                ("AddUserToGroup", {"groupName": "developers", "userName": p.name}),
                ("AttachUserPolicy", {"userName": p.name, "policyArn": "arn:aws:iam::aws:policy/ReadOnlyAccess"}),
            )
            for name, iam_params in iam_calls:
                t += self.rng.randint(10, 50)
                self.ct.call(t, aws, name, "us-east-1", params=iam_params)
            if p.iam_key is not None:
                t += 30
                self.ct.create_access_key(t, aws, p.name, p.iam_key.key_id)

    # --- servers -------------------------------------------------------------------------------------

    def _servers_day(self, day0: int, weekday: int) -> None:
        rng = self.rng
        c = self.c
        # Zabbix polls Alibaba Cloud every five minutes, all day.
        for k in range(288):
            t = day0 + k * 300 + rng.randint(0, 20)
            for region in c.aliyun_regions:
                self.at.call(t, self.zabbix, "DescribeInstances", region)
                t += rng.randint(0, 2)
            for name, region in (
                ("DescribeMetricList", c.aliyun_regions[0]),
                ("DescribeMetricList", c.aliyun_regions[0]),
                ("DescribeMetricLast", c.aliyun_regions[0]),
                ("DescribeMetricList", c.aliyun_regions[1]),
            ):
                self.at.call(t, self.zabbix, name, region)
                t += rng.randint(0, 2)
        # The CloudWatch exporter on EC2 scrapes AWS every five minutes with its instance role.
        exporter = c.servers["cw-exporter"]
        session: Actor | None = None
        for k in range(288):
            t = day0 + k * 300 + rng.randint(0, 30)
            if k % 12 == 0:
                session = self._instance_role(t, "cw-exporter", self.exporter_instance, exporter.ip)
            assert session is not None
            for name in ("GetMetricData", "GetMetricData", "DescribeInstances", "DescribeAutoScalingGroups"):
                api = Clients.api_name(AWS_APIS[name].source)
                self.ct.call(t, session, name, c.aws_home, user_agent=Clients.AWS_GO_EXPORTER.format(api=api))
                t += rng.randint(0, 2)
            for region in c.aws_regions[1:]:
                self.ct.call(
                    t, session, "GetMetricData", region, user_agent=Clients.AWS_GO_EXPORTER.format(api="cloudwatch")
                )
            if k % 3 == 0:
                ua = Clients.AWS_GO_EXPORTER.format(api="elasticloadbalancingv2")
                self.ct.call(t, session, "DescribeTargetHealth", c.aws_home, user_agent=ua)
        # ACK nodes: cloud-controller-manager with the node's RAM role (STS credentials, rotated hourly).
        node = c.servers["ack-node"]
        ack: Actor | None = None
        for k in range(288):
            t = day0 + k * 300 + rng.randint(0, 60)
            if k % 12 == 0:
                ack = self._aliyun_instance_role(t, node.ip)
                self.at.call(t + 5, ack, "Decrypt", c.aliyun_home)
            assert ack is not None
            self.at.call(t + 10, ack, "DescribeInstances", c.aliyun_home)
            self.at.call(t + 11, ack, "DescribeLoadBalancers", c.aliyun_home)
        # Nightly backups: database dumps to OSS, then a copy to S3.
        t = day0 + 2 * HOUR + rng.randint(0, 15 * MINUTE)
        self.at.call(t, self.backup, "DescribeDBInstances", c.aliyun_home)
        self.at.call(t + 2, self.backup, "DescribeBackups", c.aliyun_home)
        for _ in range(rng.randint(12, 20)):
            t += rng.randint(20, 120)
            self.at.call(t, self.backup, "PutObject", c.aliyun_home, bucket=f"{c.alias}-backup")
        t += 10 * MINUTE
        for name in ("ListBuckets", "GetBucketLocation", "GetBucketEncryption", "GetBucketVersioning"):
            t += rng.randint(1, 4)
            ua = Clients.AWS_CLI_SERVER.format(command=Clients.aws_command("s3", name))
            self.ct.call(t, self.backup_s3, name, c.aws_home, bucket=f"{c.alias}-db-backups", user_agent=ua)
        if weekday >= 5:
            return
        # CI: Jenkins deploys to Alibaba Cloud, GitLab runners deploy to AWS, in working hours.
        for _ in range(rng.randint(8, 14)):
            t = day0 + rng.randint(10 * HOUR, 21 * HOUR)
            self.at.call(t, self.jenkins, "GetCallerIdentity", c.aliyun_home)
            self.at.call(t + 1, self.jenkins, "DescribeClusterDetail", c.aliyun_home)
            for _ in range(rng.randint(3, 8)):
                t += rng.randint(1, 6)
                self.at.call(t, self.jenkins, "PutObject", c.aliyun_home, bucket=f"{c.alias}-static")
            self.at.call(t + 20, self.jenkins, "RefreshObjectCaches", c.aliyun_home)
            self.at.call(t + 25, self.jenkins, "DescribeInstances", c.aliyun_home)
        runner = c.servers["gitlab-runner"]
        for _ in range(rng.randint(6, 12)):
            t = day0 + rng.randint(10 * HOUR, 21 * HOUR)
            ci = self._instance_role(t - 30, "ci-runner", self.runner_instance, runner.ip, deliver=False)
            steps = ["GetCallerIdentity", "GetAuthorizationToken", "DescribeRepositories", "RegisterTaskDefinition"]
            steps += ["UpdateService"] + ["DescribeServices"] * rng.randint(3, 6)
            for name in steps:
                ua = Clients.AWS_CLI_SERVER.format(command=Clients.aws_command(AWS_APIS[name].source, name))
                self.ct.call(t, ci, name, c.aws_home, user_agent=ua)
                t += rng.randint(2, 40)

    def _instance_role(self, t: int, role: str, instance: str, ip: str, deliver: bool = True) -> Actor:
        """EC2 delivers an instance profile's credentials (``AssumeRole`` by ec2.amazonaws.com)."""
        session = self.ct.role_session(role, instance, t, ip, Clients.AWS_BOTO3, ec2=True)
        if deliver:
            self.ct.deliver_instance_role(t, role, instance, session, self.c.aws_home)
        return session

    def _aliyun_instance_role(self, t: int, ip: str) -> Actor:
        """ECS hands the node its instance RAM role's STS credentials (``AssumeRole`` by ecs.aliyuncs.com)."""
        actor = self.at.assumed_role("ack-node-role", self.ack_instance, t, ip, Clients.ALIYUN_GO)
        role_arn = f"acs:ram::{self.c.aliyun_account_id}:role/ack-node-role"
        self.at.call(
            t,
            self.at.system("ecs.aliyuncs.com"),
            "AssumeRole",
            self.c.aliyun_home,
            params={"RoleArn": role_arn, "RoleSessionName": self.ack_instance, "DurationSeconds": "21600"},
            resources=["ack-node-role"],
        )
        return actor

    def _cloud_services_day(self, day0: int, weekday: int) -> None:
        rng = self.rng
        c = self.c
        # Automatic snapshot policy at 01:00.
        snap = self.at.system("ecs.aliyuncs.com")
        for k in range(rng.randint(6, 10)):
            self.at.call(day0 + HOUR + k * 7, snap, "CreateSnapshot", c.aliyun_home, event_type="AliyunServiceEvent")
        # Auto scaling: out in the morning peak, in late at night (weekdays).
        if weekday < 5:
            ess = self.at.assumed_role(
                "AliyunServiceRoleForAutoScaling", "ess", day0, "ess.aliyuncs.com", "ess.aliyuncs.com"
            )
            for k in range(rng.randint(1, 3)):
                self.at.call(day0 + 9 * HOUR + 40 * MINUTE + k * 9, ess, "RunInstances", c.aliyun_home)
                self.at.call(day0 + 23 * HOUR + k * 11, ess, "DeleteInstance", c.aliyun_home)
            asg = self.ct.role_session(
                "AWSServiceRoleForAutoScaling",
                "AutoScaling",
                day0,
                "autoscaling.amazonaws.com",
                "autoscaling.amazonaws.com",
                invoked_by="autoscaling.amazonaws.com",
                path="aws-service-role/autoscaling.amazonaws.com/",
            )
            for k in range(rng.randint(1, 3)):
                self.ct.call(day0 + 10 * HOUR + k * 13, asg, "RunInstances", c.aws_home)
                self.ct.call(day0 + 23 * HOUR + 20 * MINUTE + k * 17, asg, "TerminateInstances", c.aws_home)
        # EC2 refreshes the instance-profile credentials of the CI runner every hour.
        for k in range(24):
            t = day0 + k * HOUR + rng.randint(0, 300)
            session = self.ct.role_session("ci-runner", self.runner_instance, t, "", "", ec2=True)
            self.ct.deliver_instance_role(t, "ci-runner", self.runner_instance, session, self.c.aws_home)

    # --- top-up --------------------------------------------------------------------------------------

    def top_up(self, count: int, skip: Callable[[int], bool]) -> None:
        """Add ``count`` more monitoring calls, spread evenly over the period (the exporters scrape more metrics)."""
        if count <= 0:
            return
        span = self.end - self.start
        zabbix = self.zabbix
        exporter = self.ct.role_session(
            "cw-exporter", self.exporter_instance, self.start, self.c.servers["cw-exporter"].ip, "", ec2=True
        )
        ua = Clients.AWS_GO_EXPORTER.format(api="cloudwatch")
        i = 0
        added = 0
        while added < count:
            t = self.start + (i * 7919) % span
            i += 1
            if skip(t):
                continue
            if i % 2:
                self.at.call(t, zabbix, "DescribeMetricLast", self.c.aliyun_home)
            else:
                self.ct.call(t, exporter, "GetMetricData", self.c.aws_home, user_agent=ua)
            added += 1


class _Workday:
    """One person's sessions in one stretch of time, from one IP."""

    def __init__(self, week: NormalActivity, p: Person, ip: str, arrive: int, leave: int, *, weekend: bool) -> None:
        self.w = week
        self.p = p
        self.ip = ip
        self.arrive = arrive
        self.leave = max(leave, arrive + 10 * MINUTE)
        self.weekend = weekend
        self.rng = week.rng
        self.c = week.c

    def when(self) -> int:
        """A moment in working hours, mostly not at lunch."""
        rng = self.rng
        t = rng.randint(self.arrive, self.leave)
        local = (t + SHANGHAI) % DAY
        if 12 * HOUR <= local < 13 * HOUR + 30 * MINUTE and rng.random() < 0.7:
            t += 90 * MINUTE
        return t

    def pick(self, mix: Mix) -> str:
        return self.rng.choices(mix[0], cum_weights=mix[1])[0]

    def aliyun_region(self) -> str:
        r = self.rng.random()
        regions = self.c.aliyun_regions
        return regions[0] if r < 0.72 else regions[1] if r < 0.92 else regions[2]

    def buckets(self) -> list[str]:
        a = self.c.alias
        return {
            Role.DEV: [f"{a}-static", f"{a}-user-uploads", f"{a}-sg-static"],
            Role.OPS: list(self.c.oss_buckets),
            Role.SECURITY: list(self.c.oss_buckets),
            Role.DATA: [f"{a}-datalake"],
            Role.MARKETING: [f"{a}-marketing-assets", f"{a}-static"],
            Role.CUSTOMER_SERVICE: [f"{a}-user-uploads"],
        }[self.p.role]

    # --- Alibaba Cloud ---------------------------------------------------------------------------------

    def aliyun_console(self, t: int) -> Actor:
        key = ("aliyun", self.p.name)
        actor = self.w._console.get(key)
        if actor is None:
            if self.rng.random() < 0.03:  # mistyped password first
                self.w.at.console_signin(t - self.rng.randint(15, 60), self.p, self.ip, self.p.browser, success=False)
            old_style = self.rng.random() < 0.4
            _, actor = self.w.at.console_signin(t, self.p, self.ip, self.p.browser, old_style=old_style)
            self.w._console[key] = actor
        return actor

    def key_id(self, t: int, key: AccessKey | None) -> str | None:
        """The id of the person's key on ``key``'s cloud usable at ``t``: after a leak, none until new keys come."""
        if key is None:
            return None
        rotation = self.w.rotations.get(self.p.name)
        if rotation is None or t < rotation.disabled_at:
            return key.key_id
        if t < rotation.rotated_at:
            return None
        return rotation.ram_key if key.provider == "aliyun" else rotation.iam_key

    def aliyun_key(self, t: int, ua: str) -> Actor | None:
        p = self.p
        key_id = self.key_id(t, p.ram_key)
        return None if key_id is None else self.w.at.ram_user_key(p.name, p.ram_principal_id, key_id, self.ip, ua)

    def aliyun_calls(self, actor: Actor, t: int, mix: Mix, n: int, gap: tuple[int, int] = (2, 45)) -> int:
        denied = ALI_DENIED[self.p.role]
        buckets = self.buckets()
        for _ in range(n):
            name = self.pick(mix)
            bucket = (
                self.rng.choice(buckets)
                if name in ("ListObjects", "GetObject", "PutObject", "GetBucketInfo", "GetBucketAcl")
                else None
            )
            self.w.at.call(t, actor, name, self.aliyun_region(), denied=name in denied, bucket=bucket)
            t += self.rng.randint(*gap)
        return t

    def aliyun_console_session(self, mix: Mix, low: int, high: int) -> None:
        t = self.when()
        actor = self.aliyun_console(t)
        self.aliyun_calls(actor, t + self.rng.randint(5, 30), mix, self.rng.randint(low, high))

    def aliyun_cli_session(self, mix: Mix, low: int, high: int) -> None:
        t = self.when()
        ua = Clients.aliyun_cli(self.p) if self.rng.random() < 0.6 else Clients.ALIYUN_PYTHON
        actor = self.aliyun_key(t, ua)
        if actor is not None:
            self.aliyun_calls(actor, t, mix, self.rng.randint(low, high), gap=(1, 20))

    def aliyun_terraform(self) -> None:
        t = self.when()
        actor = self.aliyun_key(t, Clients.ALIYUN_TERRAFORM)
        if actor is None:
            return
        for name in ALI_TERRAFORM:
            self.w.at.call(t, actor, name, self.c.aliyun_home)
            t += self.rng.randint(0, 1)
        if self.rng.random() < 0.3:
            self.aliyun_security_group_change(t + self.rng.randint(60, 300), actor)

    def aliyun_security_group_change(self, t: int, actor: Actor) -> None:
        """Ops open a port to the office or to the VPC (never to the whole Internet)."""
        rng = self.rng
        region = self.c.aliyun_home
        sg = rng.choice(self.c.aliyun_assets[region].security_groups)
        port = rng.choice(("22/22", "443/443", "3306/3306", "6379/6379", "8080/8080"))
        cidr = "115.236.88.96/28" if port in ("22/22", "443/443") else "172.16.0.0/12"
        description = "office" if cidr.startswith("115") else "vpc"
        numbered = rng.random() >= 0.5
        self.w.at.authorize_security_group(
            t, actor, region, sg, (port,), cidr, numbered=numbered, description=description
        )

    # --- AWS -------------------------------------------------------------------------------------------

    def aws_console(self, t: int) -> Actor:
        key = ("aws", self.p.name)
        actor = self.w._console.get(key)
        if actor is None:
            if self.rng.random() < 0.03:
                self.w.ct.console_login(t - self.rng.randint(15, 60), self.p, self.ip, self.p.browser, success=False)
            _, actor = self.w.ct.console_login(t, self.p, self.ip, self.p.browser)
            self.w._console[key] = actor
        return actor

    def aws_key(self, t: int, ua: str) -> Actor | None:
        p = self.p
        key_id = self.key_id(t, p.iam_key)
        return None if key_id is None else self.w.ct.iam_user_key(p.name, p.iam_principal_id, key_id, self.ip, ua)

    def aws_calls(
        self, actor: Actor, t: int, mix: Mix, n: int, gap: tuple[int, int] = (2, 45), cli: bool = False
    ) -> int:
        denied = AWS_DENIED.get(self.p.role, frozenset())
        region = self.c.aws_home
        for _ in range(n):
            name = self.pick(mix)
            ua = ""
            if cli:
                command = Clients.aws_command(AWS_APIS[name].source, name)
                ua = Clients.AWS_CLI.format(platform=self.p.workstation[0], command=command)
            r = region if self.rng.random() < 0.85 else self.rng.choice(self.c.aws_regions)
            # Developers' EC2 permissions are limited to the home region (aws:RequestedRegion).
            outside = self.p.role is Role.DEV and r != region and AWS_APIS[name].source == "ec2"
            self.w.ct.call(t, actor, name, r, denied=name in denied or outside, user_agent=ua)
            t += self.rng.randint(*gap)
        return t

    def aws_console_session(self, mix: Mix, low: int, high: int) -> None:
        t = self.when()
        actor = self.aws_console(t)
        self.aws_calls(actor, t + self.rng.randint(5, 30), mix, self.rng.randint(low, high))

    def aws_cli_session(self, mix: Mix, low: int, high: int) -> None:
        t = self.when()
        actor = self.aws_key(t, "")
        if actor is not None:
            self.aws_calls(actor, t, mix, self.rng.randint(low, high), gap=(1, 20), cli=True)

    def aws_assume(self, t: int, role: str, ua: str) -> Actor | None:
        """``aws sts assume-role`` with the person's key (and MFA), returning the role session."""
        p = self.p
        key = self.aws_key(t, Clients.AWS_CLI.format(platform=p.workstation[0], command="sts.assume-role"))
        if key is None:
            return None
        acct = self.c.aws_account_id
        session = self.w.ct.role_session(role, p.name, t, self.ip, ua, mfa=p.mfa_aws)
        role_arn = f"arn:aws:iam::{acct}:role/{role}"
        params: dict[str, Any] = {"roleArn": role_arn, "roleSessionName": p.name, "durationSeconds": 3600}
        if p.mfa_aws:
            params["serialNumber"] = f"arn:aws:iam::{acct}:mfa/{p.name}"
        self.w.ct.call(
            t,
            key,
            "AssumeRole",
            self.c.aws_home,
            params=params,
            response={
                "credentials": self.w.ct.credentials(session, t + HOUR),
                "assumedRoleUser": {"assumedRoleId": f"{self.c.aws_roles[role]}:{p.name}", "arn": session.arn},
            },
            resources=[{"accountId": acct, "type": "AWS::IAM::Role", "ARN": role_arn}],
        )
        return session

    def aws_role_session(self, role: str, mix: Mix, low: int, high: int) -> None:
        t = self.when()
        session = self.aws_assume(t, role, Clients.AWS_BOTO3)
        if session is not None:
            self.aws_calls(session, t + 3, mix, self.rng.randint(low, high), gap=(1, 25))

    def aws_terraform(self) -> None:
        t = self.when()
        session = self.aws_assume(t, "OpsAdmin", "")
        if session is None:
            return
        for name in AWS_TERRAFORM:
            t += self.rng.randint(0, 1)
            ua = Clients.AWS_TERRAFORM.format(api=Clients.api_name(AWS_APIS[name].source))
            self.w.ct.call(t, session, name, self.c.aws_home, user_agent=ua)
        if self.rng.random() < 0.3:
            t += self.rng.randint(60, 300)
            ua = Clients.AWS_TERRAFORM.format(api="ec2")
            region = self.c.aws_home
            sg = self.rng.choice(self.c.aws_assets[region].security_groups)
            port = self.rng.choice((22, 443, 5432, 6379))
            cidr = "115.236.88.96/28" if port in (22, 443) else "10.20.0.0/16"
            self.w.ct.authorize_ingress(
                t, session, region, sg, port, cidr, description="managed by terraform", user_agent=ua
            )

    def athena_session(self) -> None:
        """An analyst runs a few Athena queries (with their key and boto3 in a notebook, or in the console)."""
        rng = self.rng
        t = self.when()
        actor: Actor | None
        if self.p.iam_key is not None and rng.random() < 0.6:
            actor = self.aws_key(t, Clients.AWS_BOTO3)
        else:
            actor = self.aws_console(t)
        if actor is None:
            return
        for name in ("ListWorkGroups", "GetDatabases", "GetTables"):
            self.w.ct.call(t, actor, name, self.c.aws_home)
            t += rng.randint(1, 8)
        for _ in range(rng.randint(1, 4)):
            self.w.ct.call(t, actor, "StartQueryExecution", self.c.aws_home)
            for _ in range(rng.randint(2, 5)):
                t += rng.randint(1, 6)
                self.w.ct.call(t, actor, "GetQueryExecution", self.c.aws_home)
            self.w.ct.call(t + 1, actor, "GetQueryResults", self.c.aws_home)
            t += rng.randint(30, 400)

    # --- the roles -----------------------------------------------------------------------------------

    def repeat(self, low: int, high: int, session: Callable[[], None]) -> None:
        for _ in range(self.rng.randint(low, high)):
            session()

    def developer(self) -> None:
        quiet = self.weekend
        self.repeat(0 if quiet else 1, 1 if quiet else 3, lambda: self.aliyun_console_session(ALI_DEV_CONSOLE, 10, 45))
        self.repeat(1, 2 if quiet else 6, lambda: self.aliyun_cli_session(ALI_DEV_CLI, 4, 20))
        if self.p.has_iam_user and self.rng.random() < 0.6:
            self.aws_console_session(AWS_DEV_CONSOLE, 10, 40)
        self.repeat(0 if quiet else 1, 1 if quiet else 5, lambda: self.aws_cli_session(AWS_DEV_CLI, 3, 15))

    def operations(self) -> None:
        quiet = self.weekend
        self.repeat(1, 1 if quiet else 4, lambda: self.aliyun_console_session(ALI_OPS, 12, 50))
        self.repeat(0 if quiet else 1, 1 if quiet else 4, lambda: self.aliyun_cli_session(ALI_OPS, 4, 20))
        self.repeat(0, 0 if quiet else 2, self.aliyun_terraform)
        self.repeat(1, 1 if quiet else 3, lambda: self.aws_console_session(AWS_OPS, 10, 40))
        self.repeat(0 if quiet else 1, 1 if quiet else 4, lambda: self.aws_role_session("OpsAdmin", AWS_OPS, 4, 20))
        self.repeat(0, 0 if quiet else 2, self.aws_terraform)
        if not quiet and self.rng.random() < 0.25:
            actor = self.aliyun_console(self.when())
            self.aliyun_security_group_change(self.when(), actor)

    def security(self) -> None:
        quiet = self.weekend
        self.repeat(1, 1 if quiet else 3, lambda: self.aliyun_console_session(ALI_SECURITY, 12, 50))
        self.repeat(1, 1 if quiet else 3, lambda: self.aws_console_session(AWS_SECURITY, 12, 50))
        if self.p.ram_key is not None:
            self.repeat(0, 3, lambda: self.aliyun_cli_session(ALI_SECURITY, 4, 15))
        if not quiet:
            self.repeat(0, 2, lambda: self.aws_role_session("SecurityAudit", AWS_SECURITY, 6, 25))

    def data(self) -> None:
        quiet = self.weekend
        self.repeat(0 if quiet else 1, 2, lambda: self.aliyun_console_session(ALI_DATA, 6, 25))
        self.repeat(0 if quiet else 1, 1 if quiet else 5, lambda: self.aliyun_cli_session(ALI_DATA, 4, 20))
        self.repeat(1, 1 if quiet else 5, self.athena_session)

    def marketing(self) -> None:
        self.repeat(1, 4, lambda: self.aliyun_console_session(ALI_MARKETING, 5, 25))

    def service_desk(self) -> None:
        self.repeat(2, 5, lambda: self.aliyun_console_session(ALI_SERVICE_DESK, 5, 25))
