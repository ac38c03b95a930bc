"""What the estimate prices against what the program declares (issue 27): every Azure resource type a
stack declares is priced by a line, listed as billable but unpriced (with what bills), or listed as
free, so a new resource cannot be forgotten; and the private network's endpoints and zones are priced
in the numbers the test stack declares."""

from __future__ import annotations

import json

import pytest

from cost.__main__ import stack_settings
from cost.estimate import BILLED_TYPES, FREE_TYPES, RUNNING, UNPRICED_TYPES, estimate_settings, render
from cost.prices import SNAPSHOT, load_snapshot
from mocks import ProgramRun, run_stack

STACKS = {"dev": {}, "prod": {}, "test": {}, "review": {"instance": "pr7"}}


@pytest.fixture(scope="module")
def runs() -> dict[str, ProgramRun]:
    return {stack: run_stack(stack, overrides) for stack, overrides in STACKS.items()}


def azure_types(run: ProgramRun) -> set[str]:
    return {r.type for r in run.resources if r.type.startswith("azure-native:")}


def test_the_schema_script_is_declared_by_every_stack_and_listed_as_unpriced(
    runs: dict[str, ProgramRun],
) -> None:
    """Issue 33: every stack now runs the schema as a deployment script (public ones too); it bills
    a container and, on the public network, the service's own storage, for minutes per run. The
    subnet release (`command:local:Command`) runs on the deploying machine: no Azure charge."""
    script = "azure-native:resources:AzureCliScript"
    assert all(run.of_type(script) for run in runs.values())
    assert "storage account the service creates" in UNPRICED_TYPES[script]
    assert runs["test"].of_type("command:local:Command")


def test_every_declared_azure_type_is_priced_unpriced_or_free(runs: dict[str, ProgramRun]) -> None:
    declared = set().union(*(azure_types(run) for run in runs.values()))
    lists = (set(BILLED_TYPES), set(UNPRICED_TYPES), set(FREE_TYPES))
    missing = sorted(t for t in declared if not any(t in names for names in lists))
    assert missing == [], (
        f"add each to BILLED_TYPES, UNPRICED_TYPES or FREE_TYPES in cost/estimate.py: {missing}"
    )
    assert all(len([names for names in lists if t in names]) == 1 for t in declared)
    lines = json.loads(SNAPSHOT.read_text())["lines"]
    assert {key for keys in BILLED_TYPES.values() for key in keys} <= set(lines)


@pytest.mark.parametrize("stack", list(STACKS))
def test_the_estimate_prices_every_billable_type_the_stack_declares(
    stack: str, runs: dict[str, ProgramRun]
) -> None:
    settings = stack_settings(stack)
    estimate = estimate_settings(settings, load_snapshot())
    priced = {item.line.key for item in estimate.items if item.line}
    unpriced = [
        t
        for t in sorted(azure_types(runs[stack]) & set(BILLED_TYPES))
        if not set(BILLED_TYPES[t]) & priced
        and not (t.endswith(":SignalR") and settings.signalr_sku == "Free_F1")
    ]
    assert unpriced == []


def test_the_private_stack_pays_for_each_endpoint_and_zone_it_declares(runs: dict[str, ProgramRun]) -> None:
    test = runs["test"]
    estimate = estimate_settings(stack_settings("test"), load_snapshot())
    by_key = {item.line.key: item for item in estimate.items if item.line}
    endpoints = len(test.of_type("azure-native:network:PrivateEndpoint"))
    zones = len(test.of_type("azure-native:privatedns:PrivateZone"))
    assert (endpoints, zones) == (5, 5)
    assert by_key["private-endpoint-hour"].quantity == endpoints * RUNNING["1 Hour"]
    assert by_key["private-dns-zone"].quantity == zones
    assert {"private-endpoint-data-ingress", "private-endpoint-data-egress"} <= set(by_key)
    # Each printed line says the region its price is from (Private Link's meters are Global).
    text = render("test", estimate)
    assert "private endpoints: 5: 3,650 x 0.01 USD/1 Hour, Global" in text
    assert "private DNS zones: 5: 5 x 0.5 USD/1/Month, region not given" in text
    assert "USD/1 Hour, westus3" in text
