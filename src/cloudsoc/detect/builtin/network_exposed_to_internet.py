"""``network_exposed_to_internet``: a security group, network ACL or database whitelist now lets the whole
Internet reach an admin or database port (SSH, RDP, MySQL, Redis, …) or every port.

Ranges are parsed: ``0.0.0.0/0``, ``::/0`` and other public ranges of /8 (IPv6 /16) or wider count; private
ranges (the VPC, the office) and narrow public ones do not. Only allowing rules on the way in count: ``drop``
rules, egress, revocations and removals from a whitelist never fire. A database made publicly accessible (AWS
RDS ``publiclyAccessible``) counts too: its endpoint gets an Internet address.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from cloudsoc.detect.alert import Severity
from cloudsoc.detect.builtin.base import ActionRule, BuiltinRule, Check, Detection
from cloudsoc.detect.builtin.network import ADMIN_PORTS, aliyun_port_range, exposed_ports, internet_wide
from cloudsoc.detect.builtin.trail import ALIYUN, AWS, flag, items, strings
from cloudsoc.detect.rule import Hit

META: Final = Detection(
    name="network_exposed_to_internet",
    title="Admin or database port opened to the Internet",
    title_zh="管理/数据库端口对公网开放",
    severity=Severity.HIGH,
    tags=("attack.defense_evasion", "attack.t1562.007", "attack.initial_access", "attack.t1133"),
    description=(
        "A security group, network ACL or database whitelist was changed to let any address on the Internet "
        "reach SSH, RDP, a database, a cache or every port. Such ports are scanned within minutes and "
        "brute-forced or exploited; attackers open them for persistence and data theft."
    ),
    response=(
        "Revoke the rule (or restore the whitelist) unless it is a documented exception; allow the office / "
        "VPN range or the bastion host instead. Check who made the change and whether the instance or "
        "database was reached from new addresses since."
    ),
    description_zh=(
        "安全组、网络 ACL 或数据库白名单被修改，允许公网上的任意地址（0.0.0.0/0）访问 SSH、RDP、数据库、"
        "缓存或全部端口。这类端口暴露后几分钟内就会被扫描到，随后遭到暴力破解或漏洞利用；"
        "攻击者也会主动开放这些端口，用来维持访问和窃取数据。"
    ),
    response_zh=(
        "除非是登记在案的例外，否则删除这条规则（或恢复白名单），改为只放行办公网 / VPN 网段或堡垒机。"
        "查清是谁做的变更，以及此后该实例或数据库是否被新的地址访问过。"
    ),
)


def _port_names(ports: list[int | str]) -> list[str]:
    return [p if isinstance(p, str) else f"{p}/{ADMIN_PORTS[p]}" for p in ports]


# --- AWS ----------------------------------------------------------------------------------------------------


def _aws_permission_hits(permission: Mapping[str, Any], field: str) -> list[Hit]:
    ports = exposed_ports(permission.get("ipProtocol"), permission.get("fromPort"), permission.get("toPort"))
    if ports is None:
        return []
    cidrs = [r.get("cidrIp") for r in items(permission.get("ipRanges")) if type(r) is dict]
    cidrs += [r.get("cidrIpv6") for r in items(permission.get("ipv6Ranges")) if type(r) is dict]
    wide = [c for c in cidrs if type(c) is str and internet_wide(c)]
    if not wide:
        return []
    return [(f"{field}.cidr", wide), (f"{field}.ports", _port_names(ports))]


def _aws_ingress(doc: Mapping[str, Any]) -> list[Hit] | None:
    params = AWS.params(doc)
    hits: list[Hit] = []
    for permission in items(params.get("ipPermissions")):
        if type(permission) is dict:
            hits += _aws_permission_hits(permission, "ipPermissions")
    if "cidrIp" in params:  # the old one-rule form of the API
        hits += _aws_permission_hits(
            {**params, "ipRanges": [{"cidrIp": params.get("cidrIp")}]}, "aws.cloudtrail.requestParameters"
        )
    return [("security_group", params.get("groupId") or params.get("groupName")), *hits] if hits else None


def _aws_modify_rules(doc: Mapping[str, Any]) -> list[Hit] | None:
    request = AWS.params(doc).get("ModifySecurityGroupRulesRequest")
    hits: list[Hit] = []
    stack: list[Any] = [request]
    while stack:  # the rule sits a few levels down, as one object or a list of them
        node = stack.pop()
        if type(node) is dict:
            cidr = node.get("CidrIpv4") or node.get("CidrIpv6")
            if type(cidr) is str and internet_wide(cidr):
                ports = exposed_ports(node.get("IpProtocol"), node.get("FromPort"), node.get("ToPort"))
                if ports:
                    hits += [("SecurityGroupRule.cidr", [cidr]), ("SecurityGroupRule.ports", _port_names(ports))]
            stack.extend(node.values())
        elif type(node) is list:
            stack.extend(node)
    return hits or None


def _aws_nacl(doc: Mapping[str, Any]) -> list[Hit] | None:
    params = AWS.params(doc)
    if flag(params.get("egress")) is not False or str(params.get("ruleAction", "")).lower() != "allow":
        return None
    cidr = params.get("cidrBlock") or params.get("ipv6CidrBlock")
    if type(cidr) is not str or not internet_wide(cidr):
        return None
    ports_range = params.get("portRange")
    low = ports_range.get("from") if type(ports_range) is dict else None
    high = ports_range.get("to") if type(ports_range) is dict else None
    ports = exposed_ports(params.get("aclProtocol"), low, high)
    if ports is None:
        return None
    return [("networkAclId", params.get("networkAclId")), ("cidrBlock", cidr), ("ports", _port_names(ports))]


def _aws_db_ingress(doc: Mapping[str, Any]) -> list[Hit] | None:
    params = AWS.params(doc)
    cidr = params.get("cIDRIP") or params.get("cidrip")
    if type(cidr) is not str or not internet_wide(cidr):
        return None
    group = params.get("dBSecurityGroupName") or params.get("clusterSecurityGroupName")
    return [("db_security_group", group), ("cIDRIP", cidr)]


def _aws_db_public(doc: Mapping[str, Any]) -> list[Hit] | None:
    """A modification asking for a public endpoint (the request says so; the response echoes the current state)."""
    params = AWS.params(doc)
    if flag(params.get("publiclyAccessible")) is not True:
        return None
    name = params.get("dBInstanceIdentifier") or params.get("dBClusterIdentifier")
    return [("db", name), ("publiclyAccessible", True)]


def _aws_db_created_public(doc: Mapping[str, Any]) -> list[Hit] | None:
    """A database created or restored with a public endpoint (the default, when the request is silent, is in
    the response)."""
    params = AWS.params(doc)
    public = flag(params.get("publiclyAccessible"))
    if public is None:
        public = flag(AWS.response(doc).get("publiclyAccessible"))
    if public is not True:
        return None
    name = params.get("dBInstanceIdentifier") or params.get("dBClusterIdentifier")
    return [("db", name), ("publiclyAccessible", True)]


_AWS_CHECKS: Final[dict[str, Check]] = {
    "AuthorizeSecurityGroupIngress": _aws_ingress,
    "ModifySecurityGroupRules": _aws_modify_rules,
    "CreateNetworkAclEntry": _aws_nacl,
    "ReplaceNetworkAclEntry": _aws_nacl,
    "AuthorizeDBSecurityGroupIngress": _aws_db_ingress,
    "AuthorizeClusterSecurityGroupIngress": _aws_db_ingress,
    "ModifyDBInstance": _aws_db_public,
    "ModifyDBCluster": _aws_db_public,
    "CreateDBInstance": _aws_db_created_public,
    "CreateDBCluster": _aws_db_created_public,
    "RestoreDBInstanceFromDBSnapshot": _aws_db_created_public,
    "RestoreDBInstanceFromS3": _aws_db_created_public,
    "RestoreDBInstanceToPointInTime": _aws_db_created_public,
    "RestoreDBClusterFromSnapshot": _aws_db_created_public,
    "RestoreDBClusterToPointInTime": _aws_db_created_public,
}


# --- Alibaba Cloud ------------------------------------------------------------------------------------------


def _aliyun_rule_hits(rule: Mapping[str, Any], field: str) -> list[Hit]:
    if str(rule.get("Policy", "accept")).lower() == "drop":
        return []
    cidrs = [c for c in (rule.get("SourceCidrIp"), rule.get("Ipv6SourceCidrIp")) if type(c) is str]
    wide = [c for c in cidrs if internet_wide(c)]
    if not wide:
        return []
    low, high = aliyun_port_range(rule.get("PortRange"))
    ports = exposed_ports(rule.get("IpProtocol"), low, high)
    if ports is None:
        return []
    return [(f"{field}.SourceCidrIp", wide), (f"{field}.ports", _port_names(ports))]


def _aliyun_security_group(doc: Mapping[str, Any]) -> list[Hit] | None:
    params = ALIYUN.params(doc)
    hits = _aliyun_rule_hits(params, "requestParameters")
    permissions = params.get("Permissions")
    for n, rule in enumerate(permissions if type(permissions) is list else ()):
        if type(rule) is dict:
            hits += _aliyun_rule_hits(rule, f"Permissions.{n + 1}")
    return [("SecurityGroupId", params.get("SecurityGroupId")), *hits] if hits else None


def _aliyun_whitelist(doc: Mapping[str, Any]) -> list[Hit] | None:
    params = ALIYUN.params(doc)
    if str(params.get("ModifyMode", "Cover")).lower() == "delete":
        return None
    wide = [ip for ip in strings(params.get("SecurityIps")) if internet_wide(ip)]
    if not wide:
        return None
    instance = params.get("DBInstanceId") or params.get("InstanceId") or params.get("DBClusterId")
    return [("instance", instance), ("SecurityIps", wide)]


def _aliyun_nacl(doc: Mapping[str, Any]) -> list[Hit] | None:
    params = ALIYUN.params(doc)
    hits: list[Hit] = []
    entries = params.get("IngressAclEntries")
    for n, entry in enumerate(entries if type(entries) is list else ()):
        if type(entry) is not dict or str(entry.get("Policy", "")).lower() != "accept":
            continue
        cidr = entry.get("SourceCidrIp")
        if type(cidr) is not str or not internet_wide(cidr):
            continue
        low, high = aliyun_port_range(entry.get("Port"))
        ports = exposed_ports(entry.get("Protocol"), low, high)
        if ports:
            hits += [(f"IngressAclEntries.{n + 1}.SourceCidrIp", cidr), ("ports", _port_names(ports))]
    return [("NetworkAclId", params.get("NetworkAclId")), *hits] if hits else None


_ALIYUN_CHECKS: Final[dict[str, Check]] = {
    "AuthorizeSecurityGroup": _aliyun_security_group,
    "ModifySecurityGroupRule": _aliyun_security_group,
    "ModifySecurityIps": _aliyun_whitelist,  # RDS, Redis (R-KVStore), MongoDB (Dds)
    "ModifyDBClusterAccessWhitelist": _aliyun_whitelist,  # PolarDB
    "UpdateNetworkAclEntries": _aliyun_nacl,
}


def rules() -> list[BuiltinRule]:
    return [ActionRule(META, "aws", _AWS_CHECKS), ActionRule(META, "aliyun", _ALIYUN_CHECKS)]
