"""The built-in SME cloud rule pack: one module per detection, each with a rule per cloud and its test events
(``<detection>.tests.yml``) beside it.

>>> rules = builtin_rules()
>>> sorted(r.id for r in rules)[:3]
['access_denied_burst.aliyun', 'access_denied_burst.aws', 'access_key_created.aliyun']
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from cloudsoc.detect.builtin import (
    access_denied_burst,
    access_key_created,
    access_key_new_source,
    admin_privilege_granted,
    audit_logging_tampered,
    bastion_high_risk_command,
    console_login_failure_burst,
    console_login_without_mfa,
    identity_backdoor,
    mfa_or_password_policy_weakened,
    network_exposed_to_internet,
    org_or_region_tampering,
    remote_command_execution,
    resource_shared_externally,
    root_account_used,
    secrets_bulk_read,
    security_service_disabled,
    storage_made_public,
    threat_intel_source_ip,
    unusual_compute_launch,
)
from cloudsoc.detect.builtin.base import Detection

if TYPE_CHECKING:
    from cloudsoc.config.models import DetectionConfig
    from cloudsoc.detect.rule import Rule

__all__ = ["DETECTIONS", "builtin_rules"]

DAY_SECS: Final = 86400.0
# Used when no configuration is given (``cloudsoc detect`` without a config file, tests).
DEFAULT_LEARNING_DAYS: Final = 3.0

DETECTIONS: Final[tuple[Detection, ...]] = (
    root_account_used.META,
    console_login_without_mfa.META,
    console_login_failure_burst.META,
    access_key_created.META,
    access_key_new_source.META,
    threat_intel_source_ip.META,
    admin_privilege_granted.META,
    identity_backdoor.META,
    mfa_or_password_policy_weakened.META,
    network_exposed_to_internet.META,
    storage_made_public.META,
    audit_logging_tampered.META,
    security_service_disabled.META,
    resource_shared_externally.META,
    access_denied_burst.META,
    remote_command_execution.META,
    secrets_bulk_read.META,
    unusual_compute_launch.META,
    org_or_region_tampering.META,
    bastion_high_risk_command.META,
)


def builtin_rules(config: DetectionConfig | None = None) -> list[Rule]:
    """A fresh instance of every built-in rule (state is per instance), configured from ``config``.

    ``config.learning_days`` is the first-seen learning period (new sources of a key, new regions);
    ``config.intel_min_confidence`` the threat-intel threshold.
    """
    learning_secs = (config.learning_days if config is not None else DEFAULT_LEARNING_DAYS) * DAY_SECS
    min_confidence = config.intel_min_confidence if config is not None else threat_intel_source_ip.MIN_CONFIDENCE
    rules: list[Rule] = []
    rules += root_account_used.rules()
    rules += console_login_without_mfa.rules()
    rules += console_login_failure_burst.rules()
    rules += access_key_created.rules()
    rules += access_key_new_source.rules(learning_secs)
    rules += threat_intel_source_ip.rules(min_confidence)
    rules += admin_privilege_granted.rules()
    rules += identity_backdoor.rules()
    rules += mfa_or_password_policy_weakened.rules()
    rules += network_exposed_to_internet.rules()
    rules += storage_made_public.rules()
    rules += audit_logging_tampered.rules()
    rules += security_service_disabled.rules()
    rules += resource_shared_externally.rules()
    rules += access_denied_burst.rules()
    rules += remote_command_execution.rules()
    rules += secrets_bulk_read.rules()
    rules += unusual_compute_launch.rules(learning_secs)
    rules += org_or_region_tampering.rules()
    rules += bastion_high_risk_command.rules()
    return rules
