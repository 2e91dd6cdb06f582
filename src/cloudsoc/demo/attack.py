"""The attack story: a developer's leaked AccessKeys are used from abroad on both clouds, and the response.

A developer pushed a ``.env`` file with their Alibaba Cloud and AWS keys to a public repository. At night an
attacker uses them from a foreign hosting IP: checks whose keys they are, enumerates (mostly denied), creates a
second key, escalates to administrator through a mis-granted RAM/IAM permission, opens SSH to the Internet,
makes the backup bucket public and stops the audit trail. The on-call security engineer restarts logging,
disables the keys and reverts the changes; the developer gets new keys the next morning.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from typing import Any

import msgspec

from cloudsoc.demo.actiontrail import ActionTrailRecords
from cloudsoc.demo.activity import HOUR, MINUTE, KeyRotation
from cloudsoc.demo.actor import Actor
from cloudsoc.demo.clients import Clients
from cloudsoc.demo.cloudtrail import APIS as AWS_APIS
from cloudsoc.demo.cloudtrail import CloudTrailRecords, ip_permissions
from cloudsoc.demo.company import Company, Role
from cloudsoc.demo.ids import IdFactory
from cloudsoc.demo.timeline import ACTIONTRAIL, CLOUDTRAIL


class AttackStep(msgspec.Struct, frozen=True):
    """One step of the story: what happened, on which trail, and the ids of its records (``eventId``/``eventID``)."""

    name: str
    provider: str  # "aliyun_actiontrail" or "aws_cloudtrail"
    event_ids: list[str]
    description: str
    source_ip: str = ""
    access_key_id: str = ""


@dataclass(slots=True)
class AttackOutcome:
    steps: list[AttackStep]
    response: list[AttackStep]
    # (provider, trail stopped at, trail started again at): no records of that provider in between.
    gaps: list[tuple[str, int, int]]
    rotation: KeyRotation
    leaked_keys: dict[str, str] = field(default_factory=dict)  # provider -> key id
    attacker_keys: dict[str, str] = field(default_factory=dict)
    start: int = 0


ADMIN_DOCUMENT_ALIYUN = '{"Statement":[{"Action":"*","Effect":"Allow","Resource":"*"}],"Version":"1"}'
ADMIN_DOCUMENT_AWS = json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]},
    separators=(",", ":"),
)


class AttackStory:
    def __init__(
        self,
        company: Company,
        actiontrail: ActionTrailRecords,
        cloudtrail: CloudTrailRecords,
        ids: IdFactory,
        rng: random.Random,
    ) -> None:
        self.c = company
        self.at = actiontrail
        self.ct = cloudtrail
        self.ids = ids
        self.rng = rng
        self.p = company.person(company.leaked_person)
        self.steps: list[AttackStep] = []
        self.response: list[AttackStep] = []

    def _step(self, name: str, provider: str, ids: list[str], text: str, ip: str = "", key: str = "") -> None:
        self.steps.append(AttackStep(name, provider, ids, text, ip, key))

    def _respond(self, name: str, provider: str, ids: list[str], text: str, ip: str = "") -> None:
        self.response.append(AttackStep(name, provider, ids, text, ip))

    def run(self, t0: int) -> AttackOutcome:
        """The story starting at ``t0`` (epoch seconds, around 03:00 in Shanghai)."""
        ali_stop, ali_key2 = self._aliyun(t0)
        aws_start = ali_stop + self.rng.randint(3, 6) * MINUTE
        aws_stop, aws_key2 = self._aws(aws_start)
        ali_restart = ali_stop + self.rng.randint(18, 25) * MINUTE
        self._aliyun_response(ali_restart, ali_key2)
        aws_restart = max(aws_stop, ali_restart) + self.rng.randint(8, 14) * MINUTE
        self._aws_response(aws_restart, aws_key2)
        rotated = t0 + 7 * HOUR + self.rng.randint(0, 40) * MINUTE  # next morning, ~10:00 in Shanghai
        rotation = KeyRotation(disabled_at=t0, rotated_at=rotated, ram_key=self.ids.ltai(), iam_key=self.ids.akia())
        self._rotate(rotation)
        assert self.p.ram_key is not None and self.p.iam_key is not None
        return AttackOutcome(
            steps=self.steps,
            response=self.response,
            gaps=[(ACTIONTRAIL, ali_stop, ali_restart), (CLOUDTRAIL, aws_stop, aws_restart)],
            rotation=rotation,
            leaked_keys={ACTIONTRAIL: self.p.ram_key.key_id, CLOUDTRAIL: self.p.iam_key.key_id},
            attacker_keys={ACTIONTRAIL: ali_key2, CLOUDTRAIL: aws_key2},
            start=t0,
        )

    # --- Alibaba Cloud ---------------------------------------------------------------------------------

    def _aliyun(self, t: int) -> tuple[int, str]:
        rng = self.rng
        c = self.c
        p = self.p
        assert p.ram_key is not None
        ip1, ip2 = c.attacker_ips
        home = c.aliyun_home
        leaked = p.ram_key.key_id
        a1 = self.at.ram_user_key(p.name, p.ram_principal_id, leaked, ip1, Clients.ALIYUN_ATTACKER)
        call = self.at.call
        A = ACTIONTRAIL

        ids = [call(t, a1, "GetCallerIdentity", home)]
        self._step(
            "leaked_key_first_use",
            A,
            ids,
            f"The leaked AccessKey {leaked} of RAM user {p.name} is used for the first time from {ip1} (abroad).",
            ip1,
            leaked,
        )

        t += rng.randint(30, 90)
        recon: list[tuple[str, str, bool]] = [
            ("ListUsers", home, True),
            ("ListUsers", home, True),
            ("ListRoles", home, True),
            ("ListPolicies", home, True),
            ("ListGroups", home, True),
            ("GetService", home, False),
            ("DescribeRegions", home, False),
            ("DescribeTrails", home, True),
            ("LookupEvents", home, True),
        ]
        recon += [("DescribeInstances", r, False) for r in c.aliyun_regions]
        recon += [("DescribeSecurityGroups", home, False), ("DescribeDBInstances", home, True)]
        recon += [("GetBucketAcl", home, True), ("ListObjects", home, True), ("GetSecretValue", home, True)]
        recon += [("DescribeSuspEvents", home, True), ("ListAccessKeys", home, False), ("ListUsers", home, True)]
        recon += [("DescribeDBInstances", r, True) for r in c.aliyun_regions[1:]]
        recon += [("ListPoliciesForUser", home, False), ("GetUser", home, False)]
        ids = []
        for name, region, denied in recon:
            bucket = f"{c.alias}-backup" if name in ("GetBucketAcl", "ListObjects") else None
            params = {"UserName": p.name} if name in ("ListAccessKeys", "ListPoliciesForUser", "GetUser") else None
            ids.append(call(t, a1, name, region, denied=denied, bucket=bucket, params=params))
            t += rng.randint(1, 12)
        self._step(
            "recon_access_denied",
            A,
            ids,
            "Enumeration of RAM, OSS, ECS, RDS, KMS and ActionTrail with the leaked key: a burst of calls, most "
            "denied (NoPermission / Forbidden.RAM / AccessDenied).",
            ip1,
            leaked,
        )

        t += rng.randint(60, 180)
        new_key = self.ids.ltai()
        ids = [self.at.create_access_key(t, a1, p.name, new_key)]
        self._step(
            "create_access_key",
            A,
            ids,
            f"A second AccessKey {new_key} is created for {p.name} (persistence).",
            ip1,
            leaked,
        )

        t += rng.randint(20, 60)
        ids = [
            call(
                t,
                a1,
                "AttachPolicyToUser",
                home,
                params={"PolicyType": "System", "PolicyName": "AdministratorAccess", "UserName": p.name},
                resources=[p.name],
            )
        ]
        self._step(
            "attach_admin_policy",
            A,
            ids,
            f"AdministratorAccess is attached to {p.name} through a mis-granted ram:AttachPolicyToUser.",
            ip1,
            leaked,
        )

        a2 = self.at.ram_user_key(p.name, p.ram_principal_id, new_key, ip2, Clients.ALIYUN_ATTACKER)
        t += rng.randint(40, 120)
        ids = [
            call(
                t,
                a2,
                "CreatePolicy",
                home,
                params={
                    "PolicyName": "sys-maint",
                    "PolicyDocument": ADMIN_DOCUMENT_ALIYUN,
                    "Description": "system maintenance",
                },
                resources=["sys-maint"],
            ),
            call(
                t + rng.randint(3, 10),
                a2,
                "AttachPolicyToUser",
                home,
                params={"PolicyType": "Custom", "PolicyName": "sys-maint", "UserName": p.name},
                resources=[p.name],
            ),
        ]
        self._step(
            "custom_admin_policy",
            A,
            ids,
            "A custom policy allowing Action * on Resource * is created and attached, from a second foreign IP "
            f"{ip2} with the new key.",
            ip2,
            new_key,
        )

        t += rng.randint(60, 180)
        assets = c.aliyun_assets[home]
        sg1, sg2 = assets.security_groups[0], assets.security_groups[1]
        authorize = self.at.authorize_security_group
        ids = [
            authorize(t, a2, home, sg1, ("22/22",), "0.0.0.0/0", numbered=False),
            authorize(t + rng.randint(5, 20), a2, home, sg2, ("22/22", "3389/3389"), "0.0.0.0/0", numbered=True),
        ]
        self._step(
            "open_security_group",
            A,
            ids,
            f"Security groups {sg1} and {sg2} are opened to 0.0.0.0/0 on port 22 (and 3389).",
            ip2,
            new_key,
        )

        t += rng.randint(60, 150)
        bucket = f"{c.alias}-backup"
        ids = [
            call(
                t,
                a2,
                "PutBucketAcl",
                home,
                bucket=bucket,
                params={
                    "BucketName": bucket,
                    "HostId": f"{bucket}.oss-{c.oss_buckets[bucket]}.aliyuncs.com",
                    "x-oss-acl": "public-read",
                },
                resources=[bucket],
            )
        ]
        self._step("make_bucket_public", A, ids, f"OSS bucket {bucket} is made public-read.", ip2, new_key)

        t += rng.randint(60, 200)
        ids = [call(t, a2, "StopLogging", home, params={"Name": c.aliyun_trail, "RegionId": home})]
        self._step("stop_logging", A, ids, f"ActionTrail trail {c.aliyun_trail} is stopped.", ip2, new_key)
        return t, new_key

    def _aliyun_response(self, t: int, attacker_key: str) -> None:
        c = self.c
        p = self.p
        assert p.ram_key is not None
        responder = c.by_role(Role.SECURITY)[0]
        _, console = self.at.console_signin(t - 4 * MINUTE, responder, responder.home_ip, responder.browser)
        home = c.aliyun_home
        call = self.at.call
        A = ACTIONTRAIL
        self._respond(
            "restart_logging",
            A,
            [call(t, console, "StartLogging", home, params={"Name": c.aliyun_trail, "RegionId": home})],
            f"{responder.name} (on call) starts the trail again.",
            responder.home_ip,
        )
        t += 90
        ids = []
        for key in (p.ram_key.key_id, attacker_key):
            ids.append(
                call(
                    t,
                    console,
                    "UpdateAccessKey",
                    home,
                    params={"UserName": p.name, "UserAccessKeyId": key, "Status": "Inactive"},
                    resources=[p.name],
                )
            )
            t += 20
        self._respond("disable_keys", A, ids, f"Both AccessKeys of {p.name} are disabled.", responder.home_ip)
        ids = []
        for ptype, policy in (("System", "AdministratorAccess"), ("Custom", "sys-maint")):
            params = {"PolicyType": ptype, "PolicyName": policy, "UserName": p.name}
            ids.append(call(t, console, "DetachPolicyFromUser", home, params=params, resources=[p.name]))
            t += 15
        bucket = f"{c.alias}-backup"
        ids.append(
            call(
                t,
                console,
                "PutBucketAcl",
                home,
                bucket=bucket,
                params={"BucketName": bucket, "x-oss-acl": "private"},
                resources=[bucket],
            )
        )
        assets = c.aliyun_assets[home]
        for sg in assets.security_groups[:2]:
            t += 40
            params = {"RegionId": home, "SecurityGroupId": sg, "IpProtocol": "tcp", "PortRange": "22/22"}
            params["SourceCidrIp"] = "0.0.0.0/0"
            ids.append(call(t, console, "RevokeSecurityGroup", home, params=params, resources=[sg]))
        self._respond(
            "revert_changes",
            A,
            ids,
            "Policies detached, bucket back to private, SSH rules revoked.",
            responder.home_ip,
        )

    # --- AWS -------------------------------------------------------------------------------------------

    def _aws(self, t: int) -> tuple[int, str]:
        rng = self.rng
        c = self.c
        p = self.p
        assert p.iam_key is not None
        ip1, ip2 = c.attacker_ips
        leaked = p.iam_key.key_id
        home = c.aws_home
        C = CLOUDTRAIL

        def ua(name: str) -> str:
            return Clients.AWS_ATTACKER.format(command=Clients.aws_command(AWS_APIS[name].source, name))

        b1 = self.ct.iam_user_key(p.name, p.iam_principal_id, leaked, ip1, "")

        def call(t: int, actor: Actor, name: str, region: str = home, **kw: Any) -> str:
            return self.ct.call(t, actor, name, region, user_agent=ua(name), **kw)

        ids = [call(t, b1, "GetCallerIdentity", "us-east-1")]
        self._step(
            "leaked_key_first_use",
            C,
            ids,
            f"The leaked access key {leaked} of IAM user {p.name} is used for the first time from {ip1} (abroad).",
            ip1,
            leaked,
        )

        t += rng.randint(20, 60)
        recon: list[tuple[str, str, bool]] = [
            ("ListUsers", home, True),
            ("ListRoles", home, True),
            ("ListPolicies", home, True),
            ("GetAccountSummary", home, True),
            ("ListGroups", home, True),
            ("ListBuckets", home, False),
            ("DescribeTrails", home, True),
            ("LookupEvents", home, True),
            ("ListDetectors", home, True),
        ]
        recon += [("DescribeInstances", r, r != home) for r in c.aws_regions]  # EC2 is limited to the home region
        recon += [("DescribeSecurityGroups", home, False), ("DescribeDBInstances", home, True)]
        recon += [("GetBucketAcl", home, True), ("GetBucketPolicy", home, True), ("ListFunctions20150331", home, True)]
        recon += [("ListAccessKeys", home, False), ("ListAttachedUserPolicies", home, False)]
        recon += [("ListUsers", home, True), ("GetCredentialReport", home, True), ("DescribeRegions", home, False)]
        ids = []
        for name, region, denied in recon:
            bucket = f"{c.alias}-db-backups" if name in ("GetBucketAcl", "GetBucketPolicy") else None
            params = {"userName": p.name} if name in ("ListAccessKeys", "ListAttachedUserPolicies") else None
            ids.append(call(t, b1, name, region, denied=denied, bucket=bucket, params=params))
            t += rng.randint(1, 10)
        self._step(
            "recon_access_denied",
            C,
            ids,
            "Enumeration of IAM, S3, EC2, RDS, Lambda, GuardDuty and CloudTrail with the leaked key from a Kali "
            "Linux aws-cli: a burst of calls, most AccessDenied / Client.UnauthorizedOperation.",
            ip1,
            leaked,
        )

        t += rng.randint(60, 150)
        new_key = self.ids.akia()
        ids = [self.ct.create_access_key(t, b1, p.name, new_key, user_agent=ua("CreateAccessKey"))]
        self._step("create_access_key", C, ids, f"A second access key {new_key} is created for {p.name}.", ip1, leaked)

        t += rng.randint(20, 60)
        admin = "arn:aws:iam::aws:policy/AdministratorAccess"
        ids = [call(t, b1, "AttachUserPolicy", params={"userName": p.name, "policyArn": admin})]
        self._step(
            "attach_admin_policy",
            C,
            ids,
            f"AdministratorAccess is attached to {p.name} through a mis-granted iam:AttachUserPolicy.",
            ip1,
            leaked,
        )

        b2 = self.ct.iam_user_key(p.name, p.iam_principal_id, new_key, ip2, "")
        t += rng.randint(40, 120)
        ids = [
            call(
                t,
                b2,
                "PutUserPolicy",
                params={"userName": p.name, "policyName": "sys-maint", "policyDocument": ADMIN_DOCUMENT_AWS},
            )
        ]
        self._step(
            "inline_admin_policy",
            C,
            ids,
            f"An inline policy allowing Action * on Resource * is put on {p.name}, from {ip2} with the new key.",
            ip2,
            new_key,
        )

        t += rng.randint(60, 150)
        sg = c.aws_assets[home].security_groups[0]
        ids = [
            self.ct.authorize_ingress(t, b2, home, sg, 22, "0.0.0.0/0", user_agent=ua("AuthorizeSecurityGroupIngress"))
        ]
        self._step(
            "open_security_group", C, ids, f"Security group {sg} is opened to 0.0.0.0/0 on port 22.", ip2, new_key
        )

        t += rng.randint(60, 150)
        bucket = f"{c.alias}-db-backups"
        region = c.s3_buckets[bucket]
        host = f"{bucket}.s3.{region}.amazonaws.com"
        res = [{"accountId": c.aws_account_id, "type": "AWS::S3::Bucket", "ARN": f"arn:aws:s3:::{bucket}"}]
        public_policy = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "PublicRead",
                    "Effect": "Allow",
                    "Principal": "*",
                    "Action": "s3:GetObject",
                    "Resource": f"arn:aws:s3:::{bucket}/*",
                }
            ],
        }
        ids = [
            call(
                t,
                b2,
                "DeleteBucketPublicAccessBlock",
                bucket=bucket,
                params={"bucketName": bucket, "Host": host, "publicAccessBlock": ""},
                resources=res,
            ),
            call(
                t + rng.randint(5, 20),
                b2,
                "PutBucketPolicy",
                bucket=bucket,
                params={"bucketName": bucket, "Host": host, "policy": "", "bucketPolicy": public_policy},
                resources=res,
            ),
            call(
                t + rng.randint(25, 40),
                b2,
                "PutBucketAcl",
                bucket=bucket,
                params={"bucketName": bucket, "Host": host, "acl": "", "x-amz-acl": ["public-read"]},
                resources=res,
            ),
        ]
        self._step(
            "make_bucket_public",
            C,
            ids,
            f"S3 bucket {bucket}: public access block deleted, a bucket policy with Principal * and a public-read "
            "ACL put.",
            ip2,
            new_key,
        )

        t += rng.randint(60, 200)
        ids = [call(t, b2, "StopLogging", params={"name": c.aws_trail_arn})]
        self._step("stop_logging", C, ids, f"CloudTrail trail {c.aws_trail} is stopped.", ip2, new_key)
        return t, new_key

    def _aws_response(self, t: int, attacker_key: str) -> None:
        c = self.c
        p = self.p
        assert p.iam_key is not None
        responder = c.by_role(Role.SECURITY)[0]
        _, console = self.ct.console_login(t - 3 * MINUTE, responder, responder.home_ip, responder.browser)
        home = c.aws_home
        call = self.ct.call
        C = CLOUDTRAIL
        self._respond(
            "restart_logging",
            C,
            [call(t, console, "StartLogging", home, params={"name": c.aws_trail_arn})],
            f"{responder.name} starts the CloudTrail trail again.",
            responder.home_ip,
        )
        t += 60
        ids = []
        for key in (p.iam_key.key_id, attacker_key):
            params = {"userName": p.name, "accessKeyId": key, "status": "Inactive"}
            ids.append(call(t, console, "UpdateAccessKey", "us-east-1", params=params))
            t += 15
        self._respond("disable_keys", C, ids, f"Both access keys of {p.name} are disabled.", responder.home_ip)
        bucket = f"{c.alias}-db-backups"
        region = c.s3_buckets[bucket]
        host = f"{bucket}.s3.{region}.amazonaws.com"
        sg = c.aws_assets[home].security_groups[0]
        block = {
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        }
        ids = [
            call(
                t,
                console,
                "DetachUserPolicy",
                "us-east-1",
                params={"userName": p.name, "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"},
            ),
            call(
                t + 12, console, "DeleteUserPolicy", "us-east-1", params={"userName": p.name, "policyName": "sys-maint"}
            ),
            call(
                t + 40,
                console,
                "DeleteBucketPolicy",
                region,
                params={"bucketName": bucket, "Host": host, "policy": ""},
            ),
            call(
                t + 55,
                console,
                "PutBucketPublicAccessBlock",
                region,
                params={
                    "bucketName": bucket,
                    "Host": host,
                    "publicAccessBlock": "",
                    "PublicAccessBlockConfiguration": {"xmlns": "http://s3.amazonaws.com/doc/2006-03-01/", **block},
                },
            ),
            call(
                t + 90,
                console,
                "RevokeSecurityGroupIngress",
                home,
                params={"groupId": sg, "ipPermissions": ip_permissions(22, "0.0.0.0/0")},
                response={"requestId": self.ids.uuid4(), "_return": True},
            ),
        ]
        self._respond(
            "revert_changes",
            C,
            ids,
            "Policies removed, public access blocked again, SSH rule revoked.",
            responder.home_ip,
        )

    def _rotate(self, rotation: KeyRotation) -> None:
        """The next morning the security engineer gives the developer new keys (from the office)."""
        c = self.c
        p = self.p
        responder = c.by_role(Role.SECURITY)[0]
        t = rotation.rotated_at - 5 * MINUTE
        ip = c.offices["hangzhou"][0]
        _, console = self.at.console_signin(t - 2 * MINUTE, responder, ip, responder.browser)
        ids = [self.at.create_access_key(t, console, p.name, rotation.ram_key)]
        self._respond("new_keys", ACTIONTRAIL, ids, f"{p.name} gets a new AccessKey.", ip)
        _, aws = self.ct.console_login(t + 60, responder, ip, responder.browser)
        ids = [self.ct.create_access_key(t + 120, aws, p.name, rotation.iam_key)]
        self._respond("new_keys", CLOUDTRAIL, ids, f"{p.name} gets a new access key.", ip)
