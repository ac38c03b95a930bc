"""The preflight: what a fresh subscription or deploying machine lacks is reported before anything is
created, each with the command that fixes it, by `python -m preflight` (and `python -m deploy`, which
runs it first). The program itself reads nothing: tests/test_offline_program.py."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mocks import SUBSCRIPTION
from preflight.__main__ import main as preflight_main
from preflight.checks import BASE_PROVIDERS, ODBC_DRIVER, PRIVATE_NETWORK_PROVIDERS, Needs, check


class Subscription:
    """ARM as documented for the two reads (Azure REST: Providers - List, api-version 2021-04-01:
    `{"value": [{"namespace", "registrationState"}]}` with states Registered, Registering,
    NotRegistered, and providers never registered possibly absent; Web Apps - List Geo Regions with
    `sku=FlexConsumption`: `{"value": [{"name": "West Europe", ...}]}`). A caller without read on the
    subscription gets 403 AuthorizationFailed. It checks the bearer token, path and query."""

    def __init__(
        self,
        registered: set[str],
        registering: set[str] = frozenset(),  # type: ignore[assignment]
        flex_regions: tuple[str, ...] = ("West Europe", "North Europe", "East US 2"),
        readable: bool = True,
    ) -> None:
        self.registered, self.registering = registered, registering
        self.flex_regions, self.readable = flex_regions, readable
        self.reads: list[str] = []

    def get(self, url: str) -> tuple[int, bytes]:
        self.reads.append(url)
        if not self.readable:
            return 403, json.dumps({"error": {"code": "AuthorizationFailed", "message": "no read"}}).encode()
        if url.endswith(f"/subscriptions/{SUBSCRIPTION}/providers?api-version=2021-04-01"):
            value: list[dict[str, Any]] = [
                {"namespace": ns, "registrationState": "Registered"} for ns in sorted(self.registered)
            ] + [{"namespace": ns, "registrationState": "Registering"} for ns in sorted(self.registering)]
            value.append({"namespace": "Microsoft.Compute", "registrationState": "NotRegistered"})
        elif f"/subscriptions/{SUBSCRIPTION}/providers/Microsoft.Web/geoRegions?sku=FlexConsumption" in url:
            value = [{"name": name, "properties": {"name": name}} for name in self.flex_regions]
        else:
            return 404, b'{"error": {"code": "InvalidResourceType"}}'
        return 200, json.dumps({"value": value}).encode()

    def transport(
        self, method: str, url: str, body: bytes | None, headers: dict[str, str]
    ) -> tuple[int, dict[str, str], bytes]:
        assert method == "GET" and headers["Authorization"] == "Bearer mock-arm-token"
        status, answer = self.get(url)
        return status, {}, answer


NEEDS = Needs(subscription_id=SUBSCRIPTION, location="westeurope", flex_consumption=True)


def test_a_fresh_subscription_is_told_which_providers_to_register() -> None:
    subscription = Subscription(registered={"Microsoft.Storage"}, registering={"Microsoft.Web"})
    problems, skipped = check(subscription.get, [ODBC_DRIVER], NEEDS)
    assert skipped == []
    missing = sorted(set(BASE_PROVIDERS) - {"Microsoft.Storage"})
    assert [p.fix for p in problems] == [
        f"`az provider register --namespace {ns} --subscription {SUBSCRIPTION} --wait`"
        for ns in BASE_PROVIDERS
        if ns in missing
    ]
    assert "resource provider Microsoft.Web is Registering" in str(problems[0])
    assert any("Microsoft.Insights is NotRegistered" in str(p) for p in problems)


def test_private_networking_needs_the_network_and_app_providers() -> None:
    subscription = Subscription(registered=set(BASE_PROVIDERS))
    problems, _ = check(subscription.get, [ODBC_DRIVER], Needs(SUBSCRIPTION, "westeurope", True, True))
    assert [p.what.split()[2] for p in problems] == list(PRIVATE_NETWORK_PROVIDERS)


def test_a_region_without_flex_consumption_is_refused_with_the_ones_that_have_it() -> None:
    subscription = Subscription(registered=set(BASE_PROVIDERS))
    problems, _ = check(subscription.get, [ODBC_DRIVER], Needs(SUBSCRIPTION, "westindia", True))
    (problem,) = problems
    assert problem.what == "Flex Consumption is not offered in westindia"
    assert "az functionapp list-flexconsumption-locations" in problem.fix
    assert "eastus2, northeurope, westeurope" in problem.fix
    elastic, _ = check(subscription.get, [ODBC_DRIVER], Needs(SUBSCRIPTION, "westindia", False))
    assert elastic == []


def test_the_odbc_driver_is_needed_where_the_schema_is_applied() -> None:
    subscription = Subscription(registered=set(BASE_PROVIDERS))
    (problem,) = check(subscription.get, ["SQLite3"], NEEDS)[0]
    assert ODBC_DRIVER in problem.what and "ACCEPT_EULA=Y apt-get install -y msodbcsql18" in problem.fix
    assert "brew install msodbcsql18" in problem.fix
    preview = Needs(SUBSCRIPTION, "westeurope", True, schema_from_here=False)
    assert check(subscription.get, ["SQLite3"], preview)[0] == []


def test_reads_the_identity_may_not_make_are_skipped_not_failed() -> None:
    problems, skipped = check(Subscription(set(), readable=False).get, [ODBC_DRIVER], NEEDS)
    assert problems == [] and len(skipped) == 2 and "HTTP 403" in skipped[0]


def test_the_command_reports_and_exits_one(capsys: pytest.CaptureFixture[str]) -> None:
    fresh = Subscription(registered=set(BASE_PROVIDERS) - {"Microsoft.SignalRService"})
    code = preflight_main(["dev", "--subscription", SUBSCRIPTION], arm_get=fresh.get, drivers=[ODBC_DRIVER])
    out = capsys.readouterr().out
    assert code == 1
    assert f"`az provider register --namespace Microsoft.SignalRService --subscription {SUBSCRIPTION}" in out
    ready = Subscription(registered=set(BASE_PROVIDERS))
    assert (
        preflight_main(["dev", "--subscription", SUBSCRIPTION], arm_get=ready.get, drivers=[ODBC_DRIVER]) == 0
    )
    assert "are ready" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        preflight_main(["nosuchstack"], arm_get=ready.get, drivers=[])
