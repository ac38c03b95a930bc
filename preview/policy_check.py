"""Run the policy pack's rules against what the program declares under mocks: an offline
`pulumi preview --policy-pack policies`, for pull requests from forks (no cloud credentials)."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from mocks import ProgramRun, Registration

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "policies"))
from broadcast_policies import ALL_POLICIES  # noqa: E402  (the pack's folder is its own root)

SKIPPED_TYPES = ("pulumi:pulumi:Stack", "pulumi:providers:")


@dataclass(frozen=True)
class Violation:
    """One reported violation."""

    policy: str
    enforcement: EnforcementLevel
    resource: str
    message: str


def _options(resource: Registration) -> PolicyResourceOptions:
    return PolicyResourceOptions(
        protect=False,
        ignore_changes=[],
        delete_before_replace=None,
        aliases=[],
        custom_timeouts=PolicyCustomTimeouts(0, 0, 0),
        additional_secret_outputs=[],
        parent=resource.parent or None,
    )


def _policy_config(policy: Policy, config: Mapping[str, Any]) -> tuple[EnforcementLevel, dict[str, Any]]:
    entry = config.get(policy.name, {})
    if isinstance(entry, str):
        return EnforcementLevel(entry), {}
    level = EnforcementLevel(
        entry.get("enforcementLevel", (policy.enforcement_level or EnforcementLevel.MANDATORY).value)
    )
    defaults = {
        key: schema.get("default")
        for key, schema in (policy.config_schema.properties.items() if policy.config_schema else [])
    }
    values = {key: value for key, value in entry.items() if key != "enforcementLevel"}
    return level, {**defaults, **values}


def _validators(policy: Any) -> list[Any]:
    validate = policy.validate
    return list(validate) if isinstance(validate, list) else [validate]


def check(run: ProgramRun, config: Mapping[str, Any] | None = None) -> list[Violation]:
    """Every violation of every policy against one program run."""
    config = config or {}
    resources = [
        r
        for r in run.resources
        if not r.type.startswith(SKIPPED_TYPES) and not r.type.startswith("broadcast:")
    ]
    violations: list[Violation] = []
    for policy in ALL_POLICIES:
        level, values = _policy_config(policy, config)
        if level == EnforcementLevel.DISABLED:
            continue
        if isinstance(policy, ResourceValidationPolicy):
            for resource in resources:
                args = ResourceValidationArgs(
                    resource.type,
                    resource.inputs,
                    resource.urn,
                    resource.name,
                    _options(resource),
                    None,
                    values,
                )
                for validate in _validators(policy):
                    validate(
                        args,
                        lambda message, urn=None, r=resource, p=policy, lv=level: violations.append(
                            Violation(p.name, lv, urn or r.urn, message)
                        ),
                    )
        elif isinstance(policy, StackValidationPolicy):
            policy_resources = _policy_resources(resources)
            stack_args = StackValidationArgs(policy_resources, values)
            for validate in _validators(policy):
                validate(
                    stack_args,
                    lambda message, urn=None, p=policy, lv=level: violations.append(
                        Violation(p.name, lv, urn or "stack", message)
                    ),
                )
    return violations


def _policy_resources(resources: list[Registration]) -> list[PolicyResource]:
    """The resources as a stack policy sees them, with their dependencies and each input's sources
    (what `pulumi preview --policy-pack` hands the analyzer)."""
    by_urn = {
        r.urn: PolicyResource(r.type, r.inputs, r.urn, r.name, _options(r), None, None, [], {})
        for r in resources
    }
    for resource in resources:
        policy_resource = by_urn[resource.urn]
        policy_resource.dependencies = [by_urn[urn] for urn in resource.dependencies if urn in by_urn]
        policy_resource.property_dependencies = {
            key: [by_urn[urn] for urn in urns if urn in by_urn]
            for key, urns in resource.property_dependencies.items()
        }
        policy_resource.parent = by_urn.get(resource.parent)
    return list(by_urn.values())
