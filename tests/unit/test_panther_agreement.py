"""Agreement of the built-in pack with Panther's labelled CloudTrail rule tests.

For every Panther rule one of our detections covers, each of its test events goes through the mapped rule with
fresh state, and our verdict is compared with Panther's ``ExpectedResult``. Panther threshold rules (``Threshold:
N``) are tested per event by Panther — its ``rule()`` says whether an event counts towards the threshold — so
for those (and our burst rules) the verdict compared is our *selector's* ("select"); otherwise it is whether
our rule raises an alert ("alert"). Tests that need Panther ``Mocks`` (helper functions replaced, e.g. account
age) are reported, not compared. Every disagreement is listed below with the reason we differ on purpose.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

import pytest
import yaml

from cloudsoc.detect.builtin import builtin_rules
from cloudsoc.detect.engine import Detector, RuleIndex
from cloudsoc.detect.rule import Rule
from cloudsoc.errors import ParseError
from cloudsoc.parsers.aws_cloudtrail import AwsCloudtrail

PANTHER = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "cloudaudit" / "panther-cloudtrail-rules"
PARSER = AwsCloudtrail()
# Panther trims some test logs to the fields its rule reads; a time is all our parser needs besides.
DEFAULT_TIME = "2024-01-01T00:00:00Z"

Mode = Literal["alert", "select"]

# Panther rule file → (our rule, what is compared, why this detection covers that Panther rule).
MAPPING: dict[str, tuple[str, Mode, str]] = {
    "aws_console_root_login.yml": ("root_account_used.aws", "alert", "a root console sign-in is root use"),
    "aws_root_activity.yml": ("root_account_used.aws", "alert", "root changing things is root use"),
    "aws_root_password_changed.yml": ("root_account_used.aws", "alert", "a root password change is a root write"),
    "aws_root_access_key_created.yml": ("access_key_created.aws", "alert", "a root AccessKey is a new key"),
    "aws_console_login_without_mfa.yml": ("console_login_without_mfa.aws", "alert", "same question"),
    "aws_console_root_login_failed.yml": (
        "console_login_failure_burst.aws",
        "select",
        "failed root logins count towards a failure burst (Panther threshold 5)",
    ),
    "aws_cloudtrail_password_spraying.yml": (
        "console_login_failure_burst.aws",
        "select",
        "failed console logins count towards a burst (Panther threshold 10)",
    ),
    "aws_iam_user_key_created.yml": ("identity_backdoor.aws", "alert", "keys created for another user"),
    "aws_user_login_profile_modified.yml": ("identity_backdoor.aws", "alert", "another user's password set"),
    "aws_cloudtrail_loginprofilecreatedormodified.yml": (
        "identity_backdoor.aws",
        "alert",
        "another user's password set",
    ),
    "aws_iam_backdoor_role.yml": ("identity_backdoor.aws", "alert", "role trust opened to everyone"),
    "aws_iam_create_user.yml": ("identity_backdoor.aws", "alert", "a user created (we: only by a script's key)"),
    "aws_iam_attach_admin_user_policy.yml": ("admin_privilege_granted.aws", "alert", "AdministratorAccess"),
    "aws_iam_attach_admin_role_policy.yml": ("admin_privilege_granted.aws", "alert", "AdministratorAccess"),
    "aws_network_acl_permissive_entry.yml": (
        "network_exposed_to_internet.aws",
        "alert",
        "NACL open to anywhere (we: to admin/db ports)",
    ),
    "aws_rds_security_group_ingress_authorized.yml": (
        "network_exposed_to_internet.aws",
        "alert",
        "database network access opened (we: to the Internet)",
    ),
    "aws_rds_instance_made_public.yml": ("network_exposed_to_internet.aws", "alert", "RDS made public"),
    "aws_rds_publicrestore.yml": ("network_exposed_to_internet.aws", "alert", "RDS restored as public"),
    "aws_resource_made_public.yml": ("storage_made_public.aws", "alert", "resource policy for principal *"),
    "aws_s3_delete_public_access_block.yml": ("storage_made_public.aws", "alert", "public-access block removed"),
    "aws_cloudtrail_stopped.yml": ("audit_logging_tampered.aws", "alert", "trail stopped"),
    "aws_cloudtrail_event_selectors_disabled.yml": ("audit_logging_tampered.aws", "alert", "trail narrowed"),
    "aws_security_configuration_change.yml": ("audit_logging_tampered.aws", "alert", "trail deleted"),
    "aws_dns_logs_deleted.yml": ("audit_logging_tampered.aws", "alert", "DNS query logs deleted"),
    "aws_vpc_flow_logs_deleted.yml": ("audit_logging_tampered.aws", "alert", "flow logs deleted"),
    "aws_s3_disable_bucket_logging.yml": ("audit_logging_tampered.aws", "alert", "bucket access logs off"),
    "aws_rds_activity_stream_stopped.yml": ("audit_logging_tampered.aws", "alert", "database audit stream off"),
    "aws_bedrock_deletemodelinvocationloggingconfiguration.yml": (
        "audit_logging_tampered.aws",
        "alert",
        "model invocation logging deleted",
    ),
    "aws_config_service_disabled_deleted.yml": ("security_service_disabled.aws", "alert", "Config off"),
    "aws_macie_evasion.yml": ("security_service_disabled.aws", "alert", "Macie weakened"),
    "aws_securityhub_finding_evasion.yml": ("security_service_disabled.aws", "alert", "Security Hub evasion"),
    "aws_waf_disassociation.yml": ("security_service_disabled.aws", "alert", "WAF removed"),
    "aws_ipset_modified.yml": ("security_service_disabled.aws", "alert", "GuardDuty trusted-IP list"),
    "aws_snapshot_made_public.yml": ("resource_shared_externally.aws", "alert", "snapshot shared"),
    "aws_ami_modified_for_public_access.yml": ("resource_shared_externally.aws", "alert", "AMI shared"),
    "aws_rds_snapshot_shared.yml": ("resource_shared_externally.aws", "alert", "RDS snapshot shared"),
    "aws_iam_user_recon_denied.yml": (
        "access_denied_burst.aws",
        "select",
        "denied calls count towards a burst (Panther threshold 15)",
    ),
    "aws_unauthorized_api_call.yml": (
        "access_denied_burst.aws",
        "select",
        "denied calls count towards a burst (Panther threshold 20)",
    ),
    "aws_ssm_distributed_command.yml": ("remote_command_execution.aws", "alert", "SSM SendCommand"),
    "aws_ec2_multi_instance_connect.yml": ("remote_command_execution.aws", "alert", "EC2 Instance Connect"),
    "aws_secretsmanager_retrieve_secrets.yml": (
        "secrets_bulk_read.aws",
        "select",
        "secret reads count towards a burst (Panther threshold 20)",
    ),
    "aws_secretsmanager_retrieve_secrets_batch.yml": (
        "secrets_bulk_read.aws",
        "select",
        "batch secret reads count (Panther threshold 5)",
    ),
    "aws_secretsmanager_retrieve_secrets_catchall.yml": (
        "secrets_bulk_read.aws",
        "alert",
        "a catch-all batch read is every secret at once",
    ),
    "aws_ssm_decrypt_ssm_params.yml": (
        "secrets_bulk_read.aws",
        "select",
        "decrypted parameter reads count (Panther threshold 25)",
    ),
    "aws_ec2_launch_unusual_ec2_instances.yml": ("unusual_compute_launch.aws", "alert", "unusual instance types"),
    "aws_cloudtrail_attempt_to_leave_org.yml": ("org_or_region_tampering.aws", "alert", "leaving the org"),
    "aws_cloudtrail_region_enabled.yml": ("org_or_region_tampering.aws", "alert", "region enabled"),
}

# (Panther file, test name) → why our verdict differs from Panther's on purpose.
DISAGREEMENTS: dict[tuple[str, str], str] = {
    ("aws_iam_create_user.yml", "IAM User Created"): (
        "stricter: a user created by a role session is everyday admin work; identity_backdoor reports users "
        "created with a person's long-term AccessKey from a script (a leaked key making a foothold)"
    ),
    ("aws_macie_evasion.yml", "UpdateSession"): (
        "stricter: publishing findings every six hours instead of every fifteen minutes is tuning; we report "
        "Macie paused or disabled"
    ),
    ("aws_macie_evasion.yml", "UpdateSession (Macie v1 event)"): "stricter: same as UpdateSession",
    ("aws_network_acl_permissive_entry.yml", "Overly Permissive Entry Added"): (
        "stricter: ports 700-702 from anywhere reach no admin or database service; we report NACLs opening "
        "admin/database ports or every port to the Internet"
    ),
    ("aws_rds_publicrestore.yml", "Not-Restore-RDS-Request"): (
        "looser: a database created with a public endpoint is as exposed as one restored with it (Panther's "
        "rule only looks at restores)"
    ),
    ("aws_rds_security_group_ingress_authorized.yml", "Ingress Authorized from EC2 Security Group"): (
        "stricter: database access for the application's own security group is how it should be done"
    ),
    ("aws_rds_security_group_ingress_authorized.yml", "Ingress Authorized from Specific CIDR"): (
        "stricter: a partner's /24 is a deliberate, narrow grant, not the Internet"
    ),
    ("aws_root_access_key_created.yml", "Root Created Access Key For User"): (
        "looser: every new long-term key is reported by access_key_created, whoever creates it for whom "
        "(Panther's rule is only about root's own keys)"
    ),
    ("aws_securityhub_finding_evasion.yml", "DeleteInsight"): (
        "stricter: an insight is a saved search; deleting one hides nothing from Security Hub"
    ),
    ("aws_securityhub_finding_evasion.yml", "UpdateFindings"): (
        "stricter: updating findings is the analysts' daily triage; we report Security Hub, its standards or "
        "controls switched off"
    ),
}


@dataclass(frozen=True)
class Outcome:
    file: str
    test: str
    rule: str
    expected: bool
    ours: bool | None  # None: the test log is not a CloudTrail record our parser accepts
    mocks: bool


@cache
def rules() -> dict[str, Rule]:
    return {rule.id: rule for rule in builtin_rules()}


def verdict(rule: Rule, mode: Mode, doc: dict[str, Any]) -> bool:
    rule.reset()
    index = RuleIndex([rule])
    matches = index.select([doc])
    if mode == "select":
        return bool(matches)
    fired = bool(Detector(index).process(matches))
    rule.reset()
    return fired


@cache
def outcomes() -> tuple[Outcome, ...]:
    found: list[Outcome] = []
    for file, (rule_id, mode, _why) in MAPPING.items():
        rule = rules()[rule_id]
        spec = yaml.safe_load((PANTHER / file).read_text(encoding="utf-8"))
        for test in spec.get("Tests", []):
            log = test.get("Log")
            if not isinstance(log, dict):
                continue
            record = dict(log)
            record.setdefault("eventTime", DEFAULT_TIME)
            try:
                doc = PARSER.parse(record)
            except ParseError:
                ours = None
            else:
                ours = verdict(rule, mode, doc)
            found.append(
                Outcome(file, test["Name"], rule_id, bool(test["ExpectedResult"]), ours, bool(test.get("Mocks")))
            )
    return tuple(found)


pytestmark = pytest.mark.skipif(not PANTHER.is_dir(), reason=f"Panther rule tests not found at {PANTHER}")


def test_every_mapping_names_a_built_in_rule_and_a_panther_rule() -> None:
    assert len(list(PANTHER.glob("*.yml"))) == 137
    for file, (rule_id, mode, why) in MAPPING.items():
        assert (PANTHER / file).is_file(), file
        assert rule_id in rules(), rule_id
        assert mode in ("alert", "select") and why


def test_verdicts_agree_with_panther_except_where_we_differ_on_purpose() -> None:
    compared = [o for o in outcomes() if o.ours is not None and not o.mocks]
    disagree = {(o.file, o.test): o for o in compared if o.ours != o.expected}
    for (file, test), o in sorted(disagree.items()):
        print(f"differs on purpose: {file} | {test} | Panther {o.expected}, ours {o.ours}")
    assert set(disagree) == set(DISAGREEMENTS), "every disagreement must be listed with its reason (and only those)"
    agreed = len(compared) - len(disagree)
    rate = agreed / len(compared)
    by_verdict = Counter((o.expected, o.ours) for o in compared)
    mocked = [o for o in outcomes() if o.mocks and o.ours is not None]
    unparsed = [o for o in outcomes() if o.ours is None]
    print(
        f"\nPanther agreement: {agreed}/{len(compared)} = {rate:.1%} over {len(MAPPING)} mapped Panther rules "
        f"(true positives {by_verdict[(True, True)]}, true negatives {by_verdict[(False, False)]}); "
        f"{len(mocked)} mock-dependent tests reported only ({sum(o.ours == o.expected for o in mocked)} agree); "
        f"{len(unparsed)} test logs are not CloudTrail records (lower-case data-lake exports)"
    )
    for o in mocked:
        if o.ours != o.expected:
            print(f"mock-dependent, not compared: {o.file} | {o.test} | Panther {o.expected}, ours {o.ours}")
    assert rate >= 0.9
    assert len(compared) >= 100
