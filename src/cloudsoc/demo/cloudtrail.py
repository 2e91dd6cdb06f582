"""AWS CloudTrail records, shaped like the management events CloudTrail delivers to S3."""

from __future__ import annotations

import random
import time
from typing import Any, NamedTuple

from cloudsoc.demo.actor import Actor
from cloudsoc.demo.company import Company, Person
from cloudsoc.demo.ids import IdFactory
from cloudsoc.demo.timeline import CLOUDTRAIL, Timeline, iso


class _Api(NamedTuple):
    source: str  # eventSource prefix: "ec2" -> "ec2.amazonaws.com"
    read_only: bool
    global_region: bool = False  # IAM and friends are logged in us-east-1


def _apis() -> dict[str, _Api]:
    table: dict[str, _Api] = {}
    for source, names, read_only, glob in (
        (
            "ec2",
            "DescribeInstances DescribeSecurityGroups DescribeVolumes DescribeSubnets DescribeVpcs DescribeImages "
            "DescribeInstanceStatus DescribeAddresses DescribeKeyPairs DescribeRegions DescribeAvailabilityZones "
            "DescribeSnapshots DescribeLaunchTemplates DescribeInstanceTypes",
            True,
            False,
        ),
        (
            "ec2",
            "RunInstances StartInstances StopInstances RebootInstances TerminateInstances "
            "AuthorizeSecurityGroupIngress RevokeSecurityGroupIngress CreateTags",
            False,
            False,
        ),
        (
            "s3",
            "ListBuckets GetBucketLocation GetBucketPolicy GetBucketAcl GetBucketVersioning GetBucketEncryption "
            "GetBucketPublicAccessBlock",
            True,
            False,
        ),
        (
            "s3",
            "PutBucketPolicy PutBucketAcl DeleteBucketPublicAccessBlock PutBucketPublicAccessBlock DeleteBucketPolicy",
            False,
            False,
        ),
        (
            "iam",
            "ListUsers GetUser ListAccessKeys ListAttachedUserPolicies ListRoles GetRole ListPolicies "
            "GetAccountSummary ListMFADevices GetCredentialReport GetAccountPasswordPolicy ListGroups",
            True,
            True,
        ),
        (
            "iam",
            "CreateUser CreateLoginProfile AddUserToGroup AttachUserPolicy DetachUserPolicy PutUserPolicy "
            "DeleteUserPolicy CreateAccessKey UpdateAccessKey GenerateCredentialReport",
            False,
            True,
        ),
        ("sts", "GetCallerIdentity AssumeRole", True, False),
        ("cloudtrail", "LookupEvents DescribeTrails GetTrailStatus GetEventSelectors", True, False),
        ("cloudtrail", "StopLogging StartLogging", False, False),
        ("monitoring", "GetMetricData ListMetrics DescribeAlarms", True, False),
        ("logs", "DescribeLogGroups DescribeLogStreams", True, False),
        ("lambda", "ListFunctions20150331 GetFunction20150331v2", True, False),
        ("rds", "DescribeDBInstances DescribeDBClusters DescribeDBSnapshots", True, False),
        ("athena", "GetQueryExecution GetQueryResults ListWorkGroups", True, False),
        ("athena", "StartQueryExecution", False, False),
        ("glue", "GetDatabases GetTables", True, False),
        ("guardduty", "ListDetectors ListFindings GetFindings", True, False),
        ("ecr", "GetAuthorizationToken DescribeRepositories", True, False),
        ("ecs", "DescribeServices DescribeClusters", True, False),
        ("ecs", "RegisterTaskDefinition UpdateService", False, False),
        ("elasticloadbalancing", "DescribeLoadBalancers DescribeTargetHealth DescribeTargetGroups", True, False),
        ("autoscaling", "DescribeAutoScalingGroups", True, False),
        ("kms", "Decrypt ListAliases GenerateDataKey", True, False),
        ("ce", "GetCostAndUsage", True, True),
    ):
        for name in names.split():
            table[name] = _Api(source, read_only, glob)
    return table


APIS = _apis()
_IAM_PREFIX = {"monitoring": "cloudwatch", "elasticloadbalancing": "elasticloadbalancing"}
_VERSIONS = {"s3": "1.10", "ec2": "1.09", "iam": "1.09", "sts": "1.08"}
_TLS = {"tlsVersion": "TLSv1.3", "cipherSuite": "TLS_AES_128_GCM_SHA256"}
_SERVICE_HOSTS = {"monitoring": "monitoring", "elasticloadbalancing": "elasticloadbalancing"}


def aws_date(t: int) -> str:
    """The date style of IAM/STS response elements: ``Nov 18, 2026, 3:02:41 AM``."""
    tm = time.gmtime(t)
    hour = tm.tm_hour % 12 or 12
    return f"{time.strftime('%b', tm)} {tm.tm_mday}, {tm.tm_year}, {hour}:{tm.tm_min:02d}:{tm.tm_sec:02d} " + (
        "AM" if tm.tm_hour < 12 else "PM"
    )


def ip_permissions(port: int, cidr: str, description: str = "") -> dict[str, Any]:
    """EC2's ``ipPermissions`` request element for one TCP port from one IPv4 range, as CloudTrail logs it."""
    ip_range = {"cidrIp": cidr, "description": description} if description else {"cidrIp": cidr}
    return {
        "items": [
            {
                "ipProtocol": "tcp",
                "fromPort": port,
                "toPort": port,
                "groups": {},
                "ipRanges": {"items": [ip_range]},
                "ipv6Ranges": {},
                "prefixListIds": {},
            }
        ]
    }


class CloudTrailRecords:
    """Builds CloudTrail records and adds them to a :class:`Timeline`; each method returns the event id."""

    def __init__(self, company: Company, ids: IdFactory, rng: random.Random, timeline: Timeline) -> None:
        self.c = company
        self.ids = ids
        self.rng = rng
        self.tl = timeline
        self.account = company.aws_account_id

    # --- identities ------------------------------------------------------------------------------------

    def user_arn(self, name: str) -> str:
        return f"arn:aws:iam::{self.account}:user/{name}"

    def iam_user_key(self, name: str, principal_id: str, key_id: str, ip: str, ua: str) -> Actor:
        arn = self.user_arn(name)
        identity = {
            "type": "IAMUser",
            "principalId": principal_id,
            "arn": arn,
            "accountId": self.account,
            "accessKeyId": key_id,
            "userName": name,
        }
        return Actor(identity, ip, ua, arn=arn)

    def person_key(self, p: Person, ip: str, ua: str) -> Actor:
        assert p.iam_key is not None
        return self.iam_user_key(p.name, p.iam_principal_id, p.iam_key.key_id, ip, ua)

    def role_session(
        self,
        role: str,
        session: str,
        t: int,
        ip: str,
        ua: str,
        *,
        mfa: bool = False,
        ec2: bool = False,
        invoked_by: str = "",
        path: str = "",
    ) -> Actor:
        role_id = self.c.aws_roles[role]
        arn = f"arn:aws:sts::{self.account}:assumed-role/{role}/{session}"
        context: dict[str, Any] = {
            "sessionIssuer": {
                "type": "Role",
                "principalId": role_id,
                "arn": f"arn:aws:iam::{self.account}:role/{path}{role}",
                "accountId": self.account,
                "userName": role,
            },
            "webIdFederationData": {},
            "attributes": {"creationDate": iso(t), "mfaAuthenticated": "true" if mfa else "false"},
        }
        if ec2:
            context["ec2RoleDelivery"] = "2.0"
        identity: dict[str, Any] = {
            "type": "AssumedRole",
            "principalId": f"{role_id}:{session}",
            "arn": arn,
            "accountId": self.account,
            "accessKeyId": self.ids.asia(),
            "sessionContext": context,
        }
        if invoked_by:
            identity["invokedBy"] = invoked_by
        return Actor(identity, ip, ua, arn=arn)

    def service(self, invoked_by: str) -> Actor:
        return Actor({"type": "AWSService", "invokedBy": invoked_by}, invoked_by, invoked_by)

    def credentials(self, session: Actor, expires_at: int) -> dict[str, Any]:
        """The ``credentials`` response element of the ``AssumeRole`` that started ``session``."""
        return {
            "accessKeyId": session.identity["accessKeyId"],
            "sessionToken": "IQoJb3JpZ2luX2VjE" + self.ids.alnum(40),
            "expiration": aws_date(expires_at),
        }

    def deliver_instance_role(self, t: int, role: str, session_name: str, session: Actor, region: str) -> str:
        """EC2 delivers an instance profile's credentials: ``AssumeRole`` by ec2.amazonaws.com, for six hours."""
        role_arn = f"arn:aws:iam::{self.account}:role/{role}"
        return self.call(
            t,
            self.service("ec2.amazonaws.com"),
            "AssumeRole",
            region,
            params={"roleArn": role_arn, "roleSessionName": session_name},
            response={"credentials": self.credentials(session, t + 6 * 3600)},
            resources=[{"accountId": self.account, "type": "AWS::IAM::Role", "ARN": role_arn}],
        )

    # --- sign-in ---------------------------------------------------------------------------------------

    def console_login(self, t: int, p: Person | None, ip: str, ua: str, *, success: bool = True) -> tuple[str, Actor]:
        """A ``ConsoleLogin`` of an IAM user (or of the root user when ``p`` is None) and its console session."""
        if p is None:
            arn = f"arn:aws:iam::{self.account}:root"
            identity: dict[str, Any] = {"type": "Root", "principalId": self.account, "arn": arn}
            identity["accountId"] = self.account
            identity["accessKeyId"] = ""
            mfa = True
            mfa_arn = f"arn:aws:iam::{self.account}:mfa/root-account-mfa-device"
        else:
            arn = self.user_arn(p.name)
            identity = {"type": "IAMUser", "principalId": p.iam_principal_id, "arn": arn}
            identity["accountId"] = self.account
            identity["userName"] = p.name
            mfa = p.mfa_aws
            mfa_arn = f"arn:aws:iam::{self.account}:mfa/{p.name}"
        used = mfa and success
        extra: dict[str, Any] = {
            "LoginTo": "https://console.aws.amazon.com/console/home?hashArgs=%23&isauthcode=true&state=hashArgsFromTB_"
            "ap-southeast-1_" + self.ids.hex(16),
            "MobileVersion": "No",
        }
        if used:
            extra["MFAIdentifier"] = mfa_arn
        extra["MFAUsed"] = "Yes" if used else "No"
        event_id = self.ids.uuid4()
        record: dict[str, Any] = {
            "eventVersion": "1.09",
            "userIdentity": identity,
            "eventTime": iso(t),
            "eventSource": "signin.amazonaws.com",
            "eventName": "ConsoleLogin",
            "awsRegion": "us-east-1",
            "sourceIPAddress": ip,
            "userAgent": ua,
        }
        if not success:
            record["errorMessage"] = "Failed authentication"
        record.update(
            {
                "requestParameters": None,
                "responseElements": {"ConsoleLogin": "Success" if success else "Failure"},
                "additionalEventData": extra,
                "eventID": event_id,
                "readOnly": False,
                "eventType": "AwsConsoleSignIn",
                "managementEvent": True,
                "recipientAccountId": self.account,
                "eventCategory": "Management",
                "tlsDetails": {**_TLS, "clientProvidedHostHeader": "signin.aws.amazon.com"},
            }
        )
        self.tl.add(t, CLOUDTRAIL, "us-east-1", record)
        session = dict(identity)
        session["accessKeyId"] = self.ids.asia()
        session["sessionContext"] = {
            "sessionIssuer": {},
            "webIdFederationData": {},
            "attributes": {"creationDate": iso(t), "mfaAuthenticated": "true" if used else "false"},
        }
        return event_id, Actor(session, ip, ua, console=True, arn=arn)

    # --- API calls -------------------------------------------------------------------------------------

    def call(
        self,
        t: int,
        actor: Actor,
        name: str,
        region: str,
        *,
        params: dict[str, Any] | None = None,
        response: dict[str, Any] | None = None,
        denied: bool = False,
        error: tuple[str, str] | None = None,
        user_agent: str = "",
        source_ip: str = "",
        bucket: str | None = None,
        resources: list[dict[str, str]] | None = None,
    ) -> str:
        api = APIS[name]
        if api.global_region:
            region = "us-east-1"
        elif bucket is not None:
            region = self.c.s3_buckets[bucket]
        if params is None:
            params, response, resources = self._params(name, region, t, bucket)
        if denied:
            response = None
            error = self._denied(api, name, actor)
        event_id = self.ids.uuid4()
        ua = user_agent or actor.user_agent
        if actor.console and not user_agent:
            if api.source == "ec2":
                ua = "console.ec2.amazonaws.com"
            elif api.source in ("kms", "ce"):
                ua = "AWS Internal"
        record: dict[str, Any] = {
            "eventVersion": _VERSIONS.get(api.source, "1.08"),
            "userIdentity": actor.identity,
            "eventTime": iso(t),
            "eventSource": f"{api.source}.amazonaws.com",
            "eventName": name,
            "awsRegion": region,
            "sourceIPAddress": source_ip or ("AWS Internal" if ua == "AWS Internal" else actor.ip),
            "userAgent": ua,
        }
        if error is not None:
            record["errorCode"], record["errorMessage"] = error
        record["requestParameters"] = params or None
        record["responseElements"] = response
        if api.source == "s3":
            record["additionalEventData"] = {
                "SignatureVersion": "SigV4",
                "CipherSuite": "TLS_AES_128_GCM_SHA256",
                "bytesTransferredIn": 0,
                "AuthenticationMethod": "AuthHeader",
                "x-amz-id-2": self.ids.s3_host_id(),
                "bytesTransferredOut": 0 if not api.read_only else self.rng.randint(200, 4000),
            }
            record["requestID"] = self.ids.s3_request_id()
        else:
            record["requestID"] = self.ids.uuid4()
        record["eventID"] = event_id
        record["readOnly"] = api.read_only
        if resources:
            record["resources"] = resources
        record["eventType"] = "AwsApiCall"
        record["managementEvent"] = True
        record["recipientAccountId"] = self.account
        record["eventCategory"] = "Management"
        if not actor.ip.endswith(".amazonaws.com") and record["sourceIPAddress"] != "AWS Internal":
            record["tlsDetails"] = {**_TLS, "clientProvidedHostHeader": self._host(api.source, region, params)}
        if actor.console:
            record["sessionCredentialFromConsole"] = "true"
        self.tl.add(t, CLOUDTRAIL, region, record)
        return event_id

    def create_access_key(self, t: int, actor: Actor, user: str, key_id: str, *, user_agent: str = "") -> str:
        """``CreateAccessKey`` for IAM user ``user``; the response carries the new key ``key_id``."""
        return self.call(
            t,
            actor,
            "CreateAccessKey",
            "us-east-1",
            params={"userName": user},
            response={
                "accessKey": {"userName": user, "accessKeyId": key_id, "status": "Active", "createDate": aws_date(t)}
            },
            user_agent=user_agent,
        )

    def authorize_ingress(
        self,
        t: int,
        actor: Actor,
        region: str,
        group_id: str,
        port: int,
        cidr: str,
        *,
        description: str = "",
        user_agent: str = "",
    ) -> str:
        """``AuthorizeSecurityGroupIngress`` of one TCP port from ``cidr``; the response carries the new rule."""
        return self.call(
            t,
            actor,
            "AuthorizeSecurityGroupIngress",
            region,
            user_agent=user_agent,
            params={"groupId": group_id, "ipPermissions": ip_permissions(port, cidr, description)},
            response={
                "requestId": self.ids.uuid4(),
                "_return": True,
                "securityGroupRuleSet": {
                    "items": [
                        {
                            "groupOwnerId": self.account,
                            "groupId": group_id,
                            "securityGroupRuleId": f"sgr-0{self.ids.hex(16)}",
                            "isEgress": False,
                            "ipProtocol": "tcp",
                            "fromPort": port,
                            "toPort": port,
                            "cidrIpv4": cidr,
                        }
                    ]
                },
            },
        )

    def _host(self, source: str, region: str, params: dict[str, Any] | None) -> str:
        if source in ("iam", "ce"):
            return f"{source}.amazonaws.com"
        if source == "s3":
            bucket = (params or {}).get("bucketName")
            return f"{bucket}.s3.{region}.amazonaws.com" if bucket else "s3.amazonaws.com"
        return f"{_SERVICE_HOSTS.get(source, source)}.{region}.amazonaws.com"

    def _denied(self, api: _Api, name: str, actor: Actor) -> tuple[str, str]:
        action = f"{_IAM_PREFIX.get(api.source, api.source)}:{name.removesuffix('20150331')}"
        if api.source == "s3":
            return "AccessDenied", "Access Denied"
        if api.source == "ec2":
            return (
                "Client.UnauthorizedOperation",
                f"You are not authorized to perform this operation. User: {actor.arn} is not authorized to perform: "
                f"{action} because no identity-based policy allows the {action} action",
            )
        resource = f"arn:aws:iam::{self.account}:user/" if api.source == "iam" else "*"
        return (
            "AccessDenied",
            f"User: {actor.arn} is not authorized to perform: {action} on resource: {resource} because no "
            f"identity-based policy allows the {action} action",
        )

    def _params(
        self, name: str, region: str, t: int, bucket: str | None
    ) -> tuple[dict[str, Any] | None, dict[str, Any] | None, list[dict[str, str]] | None]:
        """Default (requestParameters, responseElements, resources) for ``name``."""
        rng = self.rng
        c = self.c
        a = c.aws_assets.get(region) or c.aws_assets[c.aws_home]
        acct = self.account
        api = APIS[name]
        if api.source == "ec2":
            if name == "DescribeInstances":
                if rng.random() < 0.3:
                    return (
                        {"instancesSet": {"items": [{"instanceId": rng.choice(a.instances)}]}, "filterSet": {}},
                        None,
                        None,
                    )
                return {"instancesSet": {}, "filterSet": {}}, None, None
            if name == "DescribeSecurityGroups":
                return {"securityGroupSet": {}, "securityGroupIdSet": {}, "filterSet": {}}, None, None
            if name == "DescribeVolumes":
                return {"volumeSet": {}, "filterSet": {}, "maxResults": 500}, None, None
            if name == "DescribeSubnets":
                return (
                    {
                        "subnetSet": {},
                        "filterSet": {"items": [{"name": "vpc-id", "valueSet": {"items": [{"value": a.vpcs[0]}]}}]},
                    },
                    None,
                    None,
                )
            if name == "DescribeVpcs":
                return {"vpcSet": {}, "filterSet": {}}, None, None
            if name == "DescribeImages":
                return (
                    {
                        "executableBySet": {},
                        "imagesSet": {"items": [{"imageId": rng.choice(a.images)}]},
                        "ownersSet": {},
                        "filterSet": {},
                    },
                    None,
                    None,
                )
            if name == "DescribeInstanceStatus":
                return {"instancesSet": {}, "filterSet": {}, "includeAllInstances": False}, None, None
            if name == "DescribeAddresses":
                return {"filterSet": {}, "allocationIdsSet": {}, "publicIpsSet": {}}, None, None
            if name == "DescribeKeyPairs":
                return {"keySet": {}}, None, None
            if name in ("StartInstances", "StopInstances", "RebootInstances", "TerminateInstances"):
                iid = rng.choice(a.instances)
                req: dict[str, Any] = {"instancesSet": {"items": [{"instanceId": iid}]}}
                if name == "StopInstances":
                    req["force"] = False
                states = {
                    "StartInstances": ((0, "pending"), (80, "stopped")),
                    "StopInstances": ((64, "stopping"), (16, "running")),
                    "TerminateInstances": ((32, "shutting-down"), (16, "running")),
                }
                resp: dict[str, Any] | None = None
                if name in states:
                    (cur, cur_name), (prev, prev_name) = states[name]
                    resp = {
                        "requestId": self.ids.uuid4(),
                        "instancesSet": {
                            "items": [
                                {
                                    "instanceId": iid,
                                    "currentState": {"code": cur, "name": cur_name},
                                    "previousState": {"code": prev, "name": prev_name},
                                }
                            ]
                        },
                    }
                return req, resp, None
            if name == "RunInstances":
                iid = f"i-0{self.ids.hex(16)}"
                itype = rng.choice(("t3.large", "m6i.large", "c6i.xlarge"))
                req = {
                    "instancesSet": {"items": [{"imageId": rng.choice(a.images), "minCount": 1, "maxCount": 1}]},
                    "instanceType": itype,
                    "blockDeviceMapping": {},
                    "monitoring": {"enabled": False},
                    "disableApiTermination": False,
                    "subnetId": rng.choice(a.subnets),
                    "groupSet": {"items": [{"groupId": rng.choice(a.security_groups)}]},
                }
                resp = {
                    "requestId": self.ids.uuid4(),
                    "reservationId": f"r-0{self.ids.hex(16)}",
                    "ownerId": acct,
                    "groupSet": {},
                    "instancesSet": {
                        "items": [
                            {
                                "instanceId": iid,
                                "imageId": req["instancesSet"]["items"][0]["imageId"],
                                "instanceState": {"code": 0, "name": "pending"},
                                "instanceType": itype,
                            }
                        ]
                    },
                }
                return req, resp, None
            if name == "CreateTags":
                return (
                    {
                        "resourcesSet": {"items": [{"resourceId": rng.choice(a.instances)}]},
                        "tagSet": {"items": [{"key": "Owner", "value": rng.choice(c.people).name}]},
                    },
                    {"requestId": self.ids.uuid4(), "_return": True},
                    None,
                )
            return {"filterSet": {}} if name != "DescribeRegions" else {"regionSet": {}}, None, None
        if api.source == "s3":
            if bucket is None:
                buckets = [b for b, r in c.s3_buckets.items() if r == region] or list(c.s3_buckets)
                bucket = rng.choice(buckets)
            if name == "ListBuckets":
                return {"Host": "s3.amazonaws.com"}, None, None
            sub = {
                "GetBucketLocation": "location",
                "GetBucketPolicy": "policy",
                "GetBucketAcl": "acl",
                "GetBucketVersioning": "versioning",
                "GetBucketEncryption": "encryption",
                "GetBucketPublicAccessBlock": "publicAccessBlock",
            }.get(name, "")
            req = {"bucketName": bucket, "Host": f"{bucket}.s3.{region}.amazonaws.com", sub: ""}
            return req, None, [{"accountId": acct, "type": "AWS::S3::Bucket", "ARN": f"arn:aws:s3:::{bucket}"}]
        if api.source == "iam":
            user = rng.choice(c.people).name
            if name in ("GetUser", "ListAccessKeys", "ListAttachedUserPolicies", "ListMFADevices"):
                return {"userName": user}, None, None
            if name == "GetRole":
                return {"roleName": rng.choice(list(c.aws_roles))}, None, None
            if name == "ListPolicies":
                return {"scope": "Local", "onlyAttached": False, "maxItems": 100}, None, None
            if name == "GenerateCredentialReport":
                return (
                    None,
                    {"state": "STARTED", "description": "No report exists. Starting a new report generation."},
                    None,
                )
            return None, None, None
        if api.source == "sts":
            return None, None, None
        if api.source == "cloudtrail":
            if name == "LookupEvents":
                key = rng.choice(("EventName", "Username", "EventSource"))
                value = {
                    "EventName": "ConsoleLogin",
                    "Username": rng.choice(c.people).name,
                    "EventSource": "iam.amazonaws.com",
                }[key]
                return (
                    {"maxResults": 50, "lookupAttributes": [{"attributeKey": key, "attributeValue": value}]},
                    None,
                    None,
                )
            if name == "DescribeTrails":
                return {"trailNameList": [], "includeShadowTrails": True}, None, None
            return {"name": c.aws_trail_arn}, None, None
        if api.source == "monitoring":
            if name == "GetMetricData":
                end = t - t % 60
                return (
                    {
                        "metricDataQueries": [
                            {
                                "id": f"m{i}",
                                "metricStat": {
                                    "metric": {
                                        "namespace": ns,
                                        "metricName": metric,
                                        "dimensions": [{"name": dim, "value": value}],
                                    },
                                    "period": 300,
                                    "stat": "Average",
                                },
                            }
                            for i, (ns, metric, dim, value) in enumerate(
                                [
                                    ("AWS/EC2", "CPUUtilization", "InstanceId", rng.choice(a.instances)),
                                    ("AWS/ApplicationELB", "RequestCount", "LoadBalancer", a.load_balancers[0]),
                                ]
                            )
                        ],
                        "startTime": aws_date(end - 600),
                        "endTime": aws_date(end),
                    },
                    None,
                    None,
                )
            if name == "ListMetrics":
                return {"namespace": rng.choice(("AWS/EC2", "AWS/RDS", "AWS/ApplicationELB"))}, None, None
            return {"maxRecords": 100}, None, None
        if api.source == "logs":
            if name == "DescribeLogStreams":
                return (
                    {
                        "logGroupName": rng.choice(("/ecs/lanshan-api", "/aws/lambda/thumbnailer", "/ecs/lanshan-web")),
                        "orderBy": "LastEventTime",
                        "descending": True,
                    },
                    None,
                    None,
                )
            return {"limit": 50}, None, None
        if api.source == "lambda":
            if name == "GetFunction20150331v2":
                return {"functionName": rng.choice(("thumbnailer", "order-events", "nightly-report"))}, None, None
            return None, None, None
        if api.source == "athena":
            qid = self.ids.uuid4()
            if name == "StartQueryExecution":
                table = rng.choice(("orders", "page_views", "sessions", "refunds"))
                return (
                    {
                        "queryString": f"SELECT dt, count(*) FROM analytics.{table} "
                        "WHERE dt >= '2026-11-01' GROUP BY dt",
                        "clientRequestToken": self.ids.uuid4(),
                        "queryExecutionContext": {"database": "analytics"},
                        "resultConfiguration": {"outputLocation": f"s3://{c.alias}-athena-results/"},
                        "workGroup": "primary",
                    },
                    {"queryExecutionId": qid},
                    None,
                )
            if name == "ListWorkGroups":
                return {"maxResults": 50}, None, None
            return {"queryExecutionId": qid}, None, None
        if api.source == "glue":
            return ({"databaseName": "analytics"} if name == "GetTables" else None), None, None
        if api.source == "guardduty":
            detector = "c8c6" + self.c.aws_account_id[:8] + "e5f3a9b1d0c2e7f4a6b8c0d2"
            return ({"detectorId": detector} if name != "ListDetectors" else None), None, None
        if api.source == "ecr":
            return ({"repositoryNames": ["lanshan-api"]} if name == "DescribeRepositories" else None), None, None
        if api.source == "ecs":
            if name == "RegisterTaskDefinition":
                return {"family": "lanshan-api", "networkMode": "awsvpc", "cpu": "512", "memory": "1024"}, None, None
            if name == "UpdateService":
                return (
                    {"cluster": "lanshan-prod", "service": "lanshan-api", "taskDefinition": "lanshan-api"},
                    None,
                    None,
                )
            return {"cluster": "lanshan-prod", "services": ["lanshan-api", "lanshan-web"]}, None, None
        if api.source == "elasticloadbalancing":
            if name == "DescribeTargetHealth":
                tg = f"arn:aws:elasticloadbalancing:{region}:{acct}:targetgroup/lanshan-api/{self.ids.hex(16)}"
                return {"targetGroupArn": tg}, None, None
            return None, None, None
        if api.source == "kms":
            if name in ("Decrypt", "GenerateDataKey"):
                return (
                    {
                        "encryptionAlgorithm": "SYMMETRIC_DEFAULT",
                        "encryptionContext": {"aws:ebs:id": f"vol-0{self.ids.hex(16)}"},
                    },
                    None,
                    None,
                )
            return None, None, None
        if api.source == "ce":
            return (
                {
                    "timePeriod": {"start": "2026-11-01", "end": "2026-11-30"},
                    "granularity": "DAILY",
                    "metrics": ["UnblendedCost"],
                },
                None,
                None,
            )
        return None, None, None
