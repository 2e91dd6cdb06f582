"""Alibaba Cloud ActionTrail records, shaped like the events ActionTrail delivers to OSS."""

from __future__ import annotations

import random
from typing import Any, NamedTuple

from cloudsoc.demo.actor import Actor
from cloudsoc.demo.company import Company, Person
from cloudsoc.demo.ids import IdFactory
from cloudsoc.demo.timeline import ACTIONTRAIL, Timeline, iso


class _Api(NamedTuple):
    service: str  # serviceName
    source: str  # eventSource; "{r}" is replaced by the region
    version: str  # apiVersion ("" where the product has none, e.g. OSS)
    write: bool
    resource: str  # resourceType of the main resource ("" when none)
    is_global: bool = False


def _apis() -> dict[str, _Api]:
    ecs, vpc, slb, rds = "ecs.aliyuncs.com", "vpc.aliyuncs.com", "slb.aliyuncs.com", "rds.aliyuncs.com"
    table: dict[str, _Api] = {}
    inst, sg, disk = "ACS::ECS::Instance", "ACS::ECS::SecurityGroup", "ACS::ECS::Disk"
    for name, write, res in (
        ("DescribeInstances", False, ""),
        ("DescribeInstanceStatus", False, ""),
        ("DescribeInstanceAttribute", False, inst),
        ("DescribeDisks", False, ""),
        ("DescribeSecurityGroups", False, ""),
        ("DescribeSecurityGroupAttribute", False, sg),
        ("DescribeImages", False, ""),
        ("DescribeRegions", False, ""),
        ("DescribeZones", False, ""),
        ("DescribeSnapshots", False, ""),
        ("DescribeKeyPairs", False, ""),
        ("DescribeInstanceHistoryEvents", False, ""),
        ("RunInstances", True, inst),
        ("StartInstance", True, inst),
        ("StopInstance", True, inst),
        ("RebootInstance", True, inst),
        ("DeleteInstance", True, inst),
        ("ModifyInstanceAttribute", True, inst),
        ("AuthorizeSecurityGroup", True, sg),
        ("RevokeSecurityGroup", True, sg),
        ("CreateSnapshot", True, disk),
    ):
        table[name] = _Api("Ecs", ecs, "2014-05-26", write, res)
    for name in ("DescribeVpcs", "DescribeVSwitches", "DescribeEipAddresses"):
        table[name] = _Api("Vpc", vpc, "2016-04-28", False, "")
    for name in ("DescribeLoadBalancers", "DescribeHealthStatus"):
        table[name] = _Api("Slb", slb, "2014-05-15", False, "ACS::SLB::LoadBalancer")
    for name in ("DescribeDBInstances", "DescribeDBInstanceAttribute", "DescribeSlowLogs", "DescribeBackups"):
        table[name] = _Api("Rds", rds, "2014-08-15", False, "ACS::RDS::DBInstance")
    for name, write in (
        ("GetService", False),
        ("GetBucketInfo", False),
        ("GetBucketAcl", False),
        ("ListObjects", False),
        ("GetObject", False),
        ("PutObject", True),
        ("PutBucketAcl", True),
    ):
        table[name] = _Api("Oss", "oss-{r}.aliyuncs.com", "", write, "ACS::OSS::Bucket")
    for name, write, res in (
        ("ListUsers", False, ""),
        ("GetUser", False, "ACS::RAM::User"),
        ("ListAccessKeys", False, "ACS::RAM::User"),
        ("ListPoliciesForUser", False, "ACS::RAM::User"),
        ("ListRoles", False, ""),
        ("ListPolicies", False, ""),
        ("ListGroups", False, ""),
        ("GetLoginProfile", False, "ACS::RAM::User"),
        ("CreateUser", True, "ACS::RAM::User"),
        ("CreateLoginProfile", True, "ACS::RAM::User"),
        ("AddUserToGroup", True, "ACS::RAM::User"),
        ("AttachPolicyToUser", True, "ACS::RAM::User"),
        ("DetachPolicyFromUser", True, "ACS::RAM::User"),
        ("CreateAccessKey", True, "ACS::RAM::AccessKey"),
        ("UpdateAccessKey", True, "ACS::RAM::AccessKey"),
        ("CreatePolicy", True, "ACS::RAM::Policy"),
    ):
        table[name] = _Api("Ram", "ram.aliyuncs.com", "2015-05-01", write, res, is_global=True)
    table["AssumeRole"] = _Api("Sts", "sts.aliyuncs.com", "2015-04-01", False, "ACS::RAM::Role", True)
    table["GetCallerIdentity"] = _Api("Sts", "sts.aliyuncs.com", "2015-04-01", False, "", True)
    for name, write in (
        ("DescribeTrails", False),
        ("GetTrailStatus", False),
        ("LookupEvents", False),
        ("StopLogging", True),
        ("StartLogging", True),
    ):
        table[name] = _Api("Actiontrail", "actiontrail.{r}.aliyuncs.com", "2020-07-06", write, "")
    for name in ("DescribeMetricList", "DescribeMetricLast", "DescribeAlertHistoryList"):
        table[name] = _Api("Cms", "metrics.{r}.aliyuncs.com", "2019-01-01", False, "")
    table["RefreshObjectCaches"] = _Api("Cdn", "cdn.aliyuncs.com", "2018-05-10", True, "")
    table["DescribeRefreshTasks"] = _Api("Cdn", "cdn.aliyuncs.com", "2018-05-10", False, "")
    table["DescribeCdnDomainDetail"] = _Api("Cdn", "cdn.aliyuncs.com", "2018-05-10", False, "ACS::CDN::Domain")
    table["GetLogs"] = _Api("Sls", "{r}.log.aliyuncs.com", "2020-12-30", False, "ACS::SLS::LogStore")
    table["ListLogStores"] = _Api("Sls", "{r}.log.aliyuncs.com", "2020-12-30", False, "ACS::SLS::Project")
    for name in ("DescribeClustersV1", "DescribeClusterDetail", "DescribeClusterNodes"):
        table[name] = _Api("CS", "cs.aliyuncs.com", "2015-12-15", False, "ACS::CS::Cluster")
    table["DescribeScalingGroups"] = _Api("Ess", "ess.aliyuncs.com", "2014-08-28", False, "")
    table["DescribeScalingActivities"] = _Api("Ess", "ess.aliyuncs.com", "2014-08-28", False, "")
    table["Decrypt"] = _Api("Kms", "kms.{r}.aliyuncs.com", "2016-01-20", False, "ACS::KMS::Key")
    table["GetSecretValue"] = _Api("Kms", "kms.{r}.aliyuncs.com", "2016-01-20", False, "ACS::KMS::Secret")
    table["DescribeSuspEvents"] = _Api("aegis", "tds.aliyuncs.com", "2018-12-03", False, "")
    table["DescribeCloudCenterInstances"] = _Api("aegis", "tds.aliyuncs.com", "2018-12-03", False, "")
    return table


APIS = _apis()

_DENIED = {
    "Ram": ("NoPermission", "You are not authorized to do this action. You should be authorized by RAM."),
    "Sts": ("NoPermission", "You are not authorized to do this action. You should be authorized by RAM."),
    "Actiontrail": ("NoPermission", "You are not authorized to do this action. You should be authorized by RAM."),
    "Oss": ("AccessDenied", "You have no right to access this object because of bucket acl."),
}
_FORBIDDEN_RAM = (
    "Forbidden.RAM",
    "User not authorized to operate on the specified resource, or this API doesn't support RAM.",
)


class ActionTrailRecords:
    """Builds ActionTrail records and adds them to a :class:`Timeline`; each method returns the event id."""

    def __init__(self, company: Company, ids: IdFactory, rng: random.Random, timeline: Timeline) -> None:
        self.c = company
        self.ids = ids
        self.rng = rng
        self.tl = timeline
        self.account = company.aliyun_account_id
        self.login_domain = f"{company.alias}.onaliyun.com"

    # --- identities ------------------------------------------------------------------------------------

    def ram_user_key(self, name: str, principal_id: str, key_id: str, ip: str, ua: str) -> Actor:
        identity = {
            "type": "ram-user",
            "principalId": principal_id,
            "accountId": self.account,
            "accessKeyId": key_id,
            "userName": name,
        }
        return Actor(identity, ip, ua)

    def person_key(self, p: Person, ip: str, ua: str) -> Actor:
        assert p.ram_key is not None
        return self.ram_user_key(p.name, p.ram_principal_id, p.ram_key.key_id, ip, ua)

    def assumed_role(self, role: str, session: str, t: int, ip: str, ua: str, mfa: bool = False) -> Actor:
        role_id = self.c.aliyun_roles[role]
        identity = {
            "type": "assumed-role",
            "principalId": f"{role_id}:{session}",
            "accountId": self.account,
            "accessKeyId": self.ids.aliyun_sts_key(),
            "userName": f"{role}:{session}",
            "sessionContext": {
                "attributes": {"creationDate": iso(t), "mfaAuthenticated": "true" if mfa else "false"},
                "sessionIssuer": {
                    "type": "role",
                    "principalId": role_id,
                    "arn": f"acs:ram::{self.account}:role/{role.lower()}",
                    "accountId": self.account,
                    "userName": role,
                },
            },
        }
        return Actor(identity, ip, ua)

    def system(self, service: str) -> Actor:
        identity = {"type": "system", "principalId": service, "accountId": self.account, "userName": service}
        return Actor(identity, service, service)

    # --- sign-in ---------------------------------------------------------------------------------------

    def console_signin(
        self, t: int, p: Person | None, ip: str, ua: str, *, success: bool = True, old_style: bool = False
    ) -> tuple[str, Actor]:
        """A ``ConsoleSignin`` of a RAM user (or of the main account when ``p`` is None).

        Returns the event id and the console session's actor. Older events carry ``isMFAChecked`` and
        ``loginSuccessUrl``; newer ones ``mfaChecked`` and ``callbackUrl`` (and "success" as errorMessage).
        """
        identity: dict[str, Any]
        if p is None:
            identity = {"type": "root-account", "principalId": self.account, "accountId": self.account}
            identity["userName"] = "root"
            login, service = f"admin@{self.c.alias}.tech", "Aas"
            mfa = "true"
        else:
            identity = {
                "type": "ram-user",
                "principalId": p.ram_principal_id,
                "accountId": self.account,
                "userName": p.name,
            }
            login, service = f"{p.name}@{self.login_domain}", "AasSub"
            mfa = "true" if p.mfa_aliyun else "false"
        extra: dict[str, Any] = {"loginAccount": login}
        if old_style:
            extra["isMFAChecked"] = mfa if success else "false"
            extra["loginSuccessUrl"] = "https://homenew.console.aliyun.com/"
        else:
            extra["mfaChecked"] = mfa if success else "false"
            extra["callbackUrl"] = "https://home.console.aliyun.com/"
        rid = self.ids.uuid4_upper()
        record: dict[str, Any] = {
            "eventId": rid,
            "eventVersion": "1",
            "eventSource": "signin.aliyun.com",
            "acsRegion": self.c.aliyun_home,
            "eventName": "ConsoleSignin",
            "eventType": "ConsoleSignin",
            "eventCategory": "Management",
            "eventTime": iso(t),
            "userIdentity": identity,
            "sourceIpAddress": ip,
            "userAgent": ua,
            "serviceName": service,
            "requestId": rid,
            "additionalEventData": extra,
            "isGlobal": True,
            "recipientAccountId": self.account,
        }
        if not success:
            record["errorMessage"] = "Password error"
        elif not old_style:
            record["errorMessage"] = "success"
        self.tl.add(t, ACTIONTRAIL, self.c.aliyun_home, record)
        session = dict(identity)
        session["sessionContext"] = {"attributes": {"creationDate": iso(t), "mfaAuthenticated": mfa}}
        return rid, Actor(session, ip, "AliyunConsole", console=True)

    # --- API calls -------------------------------------------------------------------------------------

    def call(
        self,
        t: int,
        actor: Actor,
        name: str,
        region: str,
        *,
        params: dict[str, Any] | None = None,
        resources: list[str] | None = None,
        denied: bool = False,
        error: tuple[str, str] | None = None,
        response: dict[str, Any] | None = None,
        event_type: str = "ApiCall",
        bucket: str | None = None,
    ) -> str:
        """One API call. Default request parameters and resources are drawn from the company's assets."""
        api = APIS[name]
        if bucket is not None and api.service == "Oss":
            region = self.c.oss_buckets[bucket]
        if params is None:
            params, resources = self._params(name, region, bucket)
        if api.is_global:
            region = self.c.aliyun_home
        event_id = self.ids.uuid4()
        request_id = self.ids.uuid4_upper()
        record: dict[str, Any] = {
            "eventId": event_id,
            "eventVersion": "1",
            "eventSource": api.source.replace("{r}", region),
            "acsRegion": region,
            "eventName": name,
            "eventType": event_type,
            "eventRW": "Write" if api.write else "Read",
            "eventCategory": "Management",
            "eventTime": iso(t),
            "userIdentity": actor.identity,
            "sourceIpAddress": actor.ip,
            "userAgent": actor.user_agent,
            "serviceName": api.service,
            "requestId": request_id,
            "requestParameters": params,
        }
        if api.version:
            record["apiVersion"] = api.version
        if response is not None:
            record["responseElements"] = response
        if resources and api.resource:
            record["referencedResources"] = {api.resource: resources}
            record["resourceName"] = ";".join(resources)
            record["resourceType"] = ";".join([api.resource] * len(resources))
        if denied:
            error = _DENIED.get(api.service, _FORBIDDEN_RAM)
        if error is not None:
            record["errorCode"], record["errorMessage"] = error
        record["isGlobal"] = api.is_global
        record["recipientAccountId"] = self.account
        self.tl.add(t, ACTIONTRAIL, region, record)
        return event_id

    def create_access_key(self, t: int, actor: Actor, user: str, key_id: str) -> str:
        """``CreateAccessKey`` for RAM user ``user``; the response carries the new key ``key_id``."""
        return self.call(
            t,
            actor,
            "CreateAccessKey",
            self.c.aliyun_home,
            params={"UserName": user},
            resources=[user],
            response={"AccessKey": {"AccessKeyId": key_id, "Status": "Active", "CreateDate": iso(t)}},
        )

    def authorize_security_group(
        self,
        t: int,
        actor: Actor,
        region: str,
        group_id: str,
        port_ranges: tuple[str, ...],
        cidr: str,
        *,
        numbered: bool,
        description: str = "",
    ) -> str:
        """``AuthorizeSecurityGroup`` opening TCP ``port_ranges`` (``"22/22"``) to ``cidr``.

        The API takes one rule as flat parameters (that form also carries ``NicType``) or several as numbered
        ``Permissions.N.*`` parameters; ``numbered`` picks the form, and the flat one takes one port range.
        """
        params = {"RegionId": region, "SecurityGroupId": group_id}
        if numbered:
            for n, port_range in enumerate(port_ranges, 1):
                rule = f"Permissions.{n}."
                params[rule + "IpProtocol"] = "tcp"
                params[rule + "PortRange"] = port_range
                params[rule + "SourceCidrIp"] = cidr
                params[rule + "Policy"] = "accept"
                params[rule + "Priority"] = "1"
                if description:
                    params[rule + "Description"] = description
        else:
            (port_range,) = port_ranges
            params["IpProtocol"] = "tcp"
            params["PortRange"] = port_range
            params["SourceCidrIp"] = cidr
            params["Policy"] = "accept"
            params["Priority"] = "1"
            params["NicType"] = "intranet"
            if description:
                params["Description"] = description
        return self.call(t, actor, "AuthorizeSecurityGroup", region, params=params, resources=[group_id])

    def _params(self, name: str, region: str, bucket: str | None) -> tuple[dict[str, Any], list[str] | None]:
        """Plausible request parameters for ``name`` (flat, as ActionTrail records them)."""
        rng = self.rng
        a = self.c.aliyun_assets.get(region) or self.c.aliyun_assets[self.c.aliyun_home]
        base: dict[str, Any] = {"RegionId": region}
        api = APIS[name]
        if api.service == "Ecs":
            if api.resource == "ACS::ECS::Instance" or name == "DescribeInstanceAttribute":
                iid = rng.choice(a.instances)
                base["InstanceId"] = iid
                if name == "StopInstance":
                    base["ForceStop"] = "false"
                elif name == "RebootInstance":
                    base["ForceStop"] = rng.choice(("false", "false", "true"))
                elif name == "RunInstances":
                    base.update(
                        {
                            "ImageId": rng.choice(a.images),
                            "InstanceType": rng.choice(("ecs.g7.large", "ecs.c7.xlarge", "ecs.g7.2xlarge")),
                            "SecurityGroupId": rng.choice(a.security_groups),
                            "VSwitchId": rng.choice(a.subnets),
                            "Amount": "1",
                            "InstanceChargeType": "PostPaid",
                        }
                    )
                return base, [iid]
            if api.resource == "ACS::ECS::SecurityGroup":
                sgid = rng.choice(a.security_groups)
                base["SecurityGroupId"] = sgid
                return base, [sgid]
            if name == "CreateSnapshot":
                disk = "d-" + a.instances[0][2:5] + self.ids.lower_alnum(17)
                base.update({"DiskId": disk, "AutoSnapshotPolicyId": "sp-" + disk[2:22]})
                return base, [disk]
            if name == "DescribeInstances":
                base.update({"PageSize": "100", "PageNumber": str(rng.choice((1, 1, 1, 2)))})
                if rng.random() < 0.3:
                    base["InstanceIds"] = f'["{rng.choice(a.instances)}"]'
            elif name in ("DescribeInstanceStatus", "DescribeDisks", "DescribeSnapshots"):
                base["PageSize"] = "50"
            return base, None
        if api.service == "Vpc":
            if name == "DescribeVSwitches":
                base["VpcId"] = rng.choice(a.vpcs)
            return base, None
        if api.service == "Slb":
            lb = rng.choice(a.load_balancers)
            if name == "DescribeHealthStatus":
                base["LoadBalancerId"] = lb
                return base, [lb]
            return base, None
        if api.service == "Rds":
            if name == "DescribeDBInstances":
                return base, None
            db = rng.choice(a.databases)
            base["DBInstanceId"] = db
            if name in ("DescribeSlowLogs", "DescribeBackups"):
                base["StartTime"] = "2026-11-01Z"
            return base, [db]
        if api.service == "Oss":
            if bucket is None:
                buckets = [b for b, r in self.c.oss_buckets.items() if r == region] or list(self.c.oss_buckets)
                bucket = rng.choice(buckets)
            if name == "GetService":
                return {"HostId": f"oss-{region}.aliyuncs.com"}, None
            params = {"BucketName": bucket, "HostId": f"{bucket}.oss-{region}.aliyuncs.com"}
            if name in ("GetObject", "PutObject"):
                params["ObjectName"] = self._object_key(bucket)
            elif name == "ListObjects":
                params.update({"prefix": rng.choice(("", "2026/", "images/", "exports/")), "max-keys": "100"})
            return params, [bucket]
        if api.service == "Ram":
            user = rng.choice(self.c.people).name
            if name in ("ListUsers", "ListRoles", "ListPolicies", "ListGroups"):
                return {"MaxItems": "100"}, None
            return {"UserName": user}, [user]
        if api.service == "Actiontrail":
            if name == "LookupEvents":
                return {"RegionId": region, "MaxResults": "50", "EventRW": rng.choice(("Write", "All"))}, None
            return {"RegionId": region, "Name": self.c.aliyun_trail}, None
        if api.service == "Cms":
            metric = rng.choice(("CPUUtilization", "memory_usedutilization", "diskusage_utilization", "IntranetIn"))
            return {
                "Namespace": "acs_ecs_dashboard",
                "MetricName": metric,
                "Period": "60",
                "Length": "1000",
            }, None
        if api.service == "Sls":
            project = f"{self.c.alias}-prod-{region}"
            store = rng.choice(("nginx-access", "app-backend", "k8s-stdout"))
            return {"ProjectName": project, "LogstoreName": store, "Line": "100", "Reverse": "true"}, [store]
        if api.service == "CS":
            if name == "DescribeClustersV1":
                return {"RegionId": region}, None
            return {"ClusterId": self.c.ack_cluster_id}, [self.c.ack_cluster_id]
        if api.service == "Cdn":
            domain = rng.choice(("static.lanshan.tech", "img.lanshan.tech", "www.lanshan.tech"))
            if name == "RefreshObjectCaches":
                path = rng.choice(("/index.html", "/js/", "/css/", "/promo/1111/"))
                return {"ObjectPath": f"https://{domain}{path}", "ObjectType": "Directory"}, None
            return {"DomainName": domain}, [domain]
        if api.service == "Kms":
            if name == "Decrypt":
                return {"CiphertextBlob": "******"}, None
            return {"SecretName": rng.choice(("prod/db/orders", "prod/redis"))}, None
        return base, None

    def _object_key(self, bucket: str) -> str:
        rng = self.rng
        if bucket.endswith("backup"):
            return f"mysql/{rng.choice(('orders', 'users', 'billing'))}/dump-{rng.randint(1, 28):02d}.sql.gz"
        if bucket.endswith("marketing-assets"):
            return f"campaign/double11/banner-{rng.randint(1, 40)}.{rng.choice(('png', 'jpg', 'mp4'))}"
        if bucket.endswith("datalake"):
            return f"ods/events/dt=2026-11-{rng.randint(10, 19)}/part-{rng.randint(0, 63):05d}.parquet"
        if bucket.endswith("user-uploads"):
            return f"tickets/{rng.randint(100000, 999999)}/{self.ids.hex(12)}.jpg"
        return f"static/{rng.choice(('js', 'css', 'img'))}/{self.ids.hex(8)}.{rng.choice(('js', 'css', 'png'))}"
