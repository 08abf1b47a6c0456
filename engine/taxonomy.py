"""The labeled-incident taxonomy (see docs/labeled-data.md): the label sets every model predicts."""

from __future__ import annotations

SEVERITIES: tuple[str, ...] = ("critical", "high", "medium", "low")

CATEGORIES: tuple[str, ...] = (
    "database",
    "network",
    "deployment",
    "configuration",
    "resource_exhaustion",
    "software_bug",
    "hardware",
    "third_party",
    "security",
)

ACTIONS: tuple[str, ...] = (
    "rollback_deploy",
    "revert_config",
    "deploy_hotfix",
    "restart_service",
    "scale_up",
    "failover",
    "throttle_traffic",
    "clear_cache",
    "restore_from_backup",
    "replace_hardware",
    "rotate_credentials",
    "escalate_vendor",
    "monitor",
)
