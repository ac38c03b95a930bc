"""The preflight: what a fresh subscription or deploying machine lacks is reported before anything is
created, each with the command that fixes it, by `python -m preflight` (and `python -m deploy`, which
runs it first). The program itself reads nothing: tests/test_offline_program.py."""

from __future__ import annotations

import base64
import json
from typing import Any

import pulumi
import pytest

from mocks import DEPLOYER_CLIENT_ID, DEPLOYER_OBJECT_ID, SUBSCRIPTION
from preflight.__main__ import main as preflight_main
from preflight.__main__ import needs_of, token_identity
from preflight.checks import BASE_PROVIDERS, ODBC_DRIVER, PRIVATE_NETWORK_PROVIDERS, Needs, check
from settings import SettingsError, load_settings, stack_file
from settings.model import Settings

HUB = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-hub/providers/Microsoft.Network/virtualNetworks/hub"
SUBNET = f"{HUB}/subnets/fn"


class Subscription:
    """ARM as documented for the two reads (Azure REST: Providers - List, api-version 2021-04-01:
    `{"value": [{"namespace", "registrationState"}]}` with states Registered, Registering,
    NotRegistered, and providers never registered possibly absent; Web Apps - List Geo Regions with
    `sku=FlexConsumption`: `{"value": [{"name": "West Europe", ...}]}`). A caller without read on the
    subscription gets 403 AuthorizationFailed. It checks the bearer token, path and query. Subnets - Get
    (api-version 2024-05-01) answers `{"properties": {"delegations": [{"properties": {"serviceName"}}]}}`,
    404 NotFound for a subnet that does not exist."""

    def __init__(
        self,
        registered: set[str],
        registering: set[str] = frozenset(),  # type: ignore[assignment]
        flex_regions: tuple[str, ...] = ("West Europe", "North Europe", "East US 2"),
        readable: bool = True,
        subnets: dict[str, list[str]] | None = None,
    ) -> None:
        self.registered, self.registering = registered, registering
        self.flex_regions, self.readable = flex_regions, readable
        self.subnets = subnets or {}
        """Subnet id -> the services it is delegated to."""
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
        elif "/subnets/" in url and url.endswith("?api-version=2024-05-01"):
            subnet = url.split("https://management.azure.com", 1)[1].split("?")[0]
            if subnet not in self.subnets:
                return 404, b'{"error": {"code": "NotFound"}}'
            delegations = [
                {"name": f"d{i}", "properties": {"serviceName": service}}
                for i, service in enumerate(self.subnets[subnet])
            ]
            return 200, json.dumps({"id": subnet, "properties": {"delegations": delegations}}).encode()
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


def test_the_odbc_driver_is_needed_where_a_schema_change_is_applied() -> None:
    subscription = Subscription(registered=set(BASE_PROVIDERS))
    applies = Needs(SUBSCRIPTION, "westeurope", True, schema_from_here=True)
    (problem,) = check(subscription.get, ["SQLite3"], applies)[0]
    assert ODBC_DRIVER in problem.what and "ACCEPT_EULA=Y apt-get install -y msodbcsql18" in problem.fix
    assert "brew install msodbcsql18" in problem.fix
    assert check(subscription.get, ["SQLite3"], NEEDS)[0] == []


def test_reads_the_identity_may_not_make_are_skipped_not_failed() -> None:
    byo = Needs(SUBSCRIPTION, "westeurope", True, True, app_subnet_id=SUBNET)
    problems, skipped = check(Subscription(set(), readable=False).get, [ODBC_DRIVER], byo)
    assert problems == [] and len(skipped) == 3 and all("HTTP 403" in reason for reason in skipped)


def stack_settings(stack: str, **overrides: Any) -> Settings:
    """A stack's settings as `python -m preflight` loads them, with config keys overridden."""
    config = {**stack_file(stack), **{f"broadcast:{key}": value for key, value in overrides.items()}}
    pulumi.runtime.set_all_config(config, [])
    return load_settings(pulumi.Config("broadcast"), stack=stack)


def test_a_private_stack_needs_container_instances_and_no_odbc_driver(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Its schema runs in a deployment script's container (ACI): the provider must be registered, and
    the deploying machine needs no ODBC driver even with --applies-schema."""
    subscription = Subscription(registered={*BASE_PROVIDERS, "Microsoft.Network", "Microsoft.App"})
    args = ["test", "--subscription", SUBSCRIPTION, "--applies-schema"]
    assert preflight_main(args, arm_get=subscription.get, drivers=[]) == 1
    out = capsys.readouterr().out
    assert "az provider register --namespace Microsoft.ContainerInstance" in out and "ODBC" not in out
    ready = Subscription(registered={*BASE_PROVIDERS, *PRIVATE_NETWORK_PROVIDERS})
    assert preflight_main(args, arm_get=ready.get, drivers=[]) == 0


def test_a_private_stack_whose_schema_runs_in_its_network_refuses_a_user_as_sql_admin() -> None:
    """The deployment script signs in as the stack's schema identity: a user admin could never be it
    (the settings refuse it, naming the keys); a group's members cannot be read with ARM, so a group
    admin is noted, not refused; a brought network applies the schema from here, any admin type."""
    admin = {
        "sqlAdminLogin": "alice",
        "sqlAdminObjectId": DEPLOYER_OBJECT_ID,
        "sqlAdminPrincipalType": "User",
    }
    with pytest.raises(SettingsError, match=r"sqlAdminPrincipalType = 'User': with network private .* unset"):
        stack_settings("test", **admin)
    ready = Subscription(registered={*BASE_PROVIDERS, *PRIVATE_NETWORK_PROVIDERS})
    group = needs_of(stack_settings("test", **{**admin, "sqlAdminPrincipalType": "Group"}), SUBSCRIPTION)
    problems, skipped = check(ready.get, [], group)
    assert problems == [] and any("schema identity" in r and "must be a member" in r for r in skipped)
    assert check(ready.get, [], needs_of(stack_settings("test"), SUBSCRIPTION)) == ([], [])
    brought = {"networkAppSubnetId": f"{HUB}/subnets/app", "networkEndpointSubnetId": f"{HUB}/subnets/pe"}
    needs = needs_of(stack_settings("test", **admin, **brought), SUBSCRIPTION, (DEPLOYER_OBJECT_ID, ""))
    assert not needs.schema_in_network and needs.sql_admin == ("User", DEPLOYER_OBJECT_ID)


def test_the_deploying_identity_must_be_the_sql_admin_where_it_applies_the_schema() -> None:
    """Only a brought network still has the deploying machine apply the schema (issue 33: public
    stacks and private ones with their own network use the deployment script)."""
    ready = Subscription(
        registered=set(BASE_PROVIDERS) | set(PRIVATE_NETWORK_PROVIDERS),
        subnets={SUBNET: ["Microsoft.App/environments"]},
    )
    other = {
        "sqlAdminLogin": "bob",
        "sqlAdminObjectId": "99999999-0000-0000-0000-000000000000",
        "network": "private",
        "networkAppSubnetId": SUBNET,
        "networkEndpointSubnetId": f"{HUB}/subnets/pe",
    }
    deployer = (DEPLOYER_OBJECT_ID, DEPLOYER_CLIENT_ID)
    needs = needs_of(stack_settings("dev", **other, sqlAdminPrincipalType="User"), SUBSCRIPTION, deployer)
    (problem,) = check(ready.get, [], needs)[0]
    assert f"the deploying identity ({DEPLOYER_OBJECT_ID}), which is not the SQL admin User" in problem.what
    as_user = {**other, "sqlAdminObjectId": DEPLOYER_OBJECT_ID, "sqlAdminPrincipalType": "User"}
    as_app = {**other, "sqlAdminObjectId": DEPLOYER_CLIENT_ID, "sqlAdminPrincipalType": "Application"}
    for admin in (as_user, as_app):
        assert check(ready.get, [], needs_of(stack_settings("dev", **admin), SUBSCRIPTION, deployer)) == (
            [],
            [],
        )


def test_the_deploying_identity_is_read_from_its_token() -> None:
    claims = {"oid": DEPLOYER_OBJECT_ID, "appid": DEPLOYER_CLIENT_ID}
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    assert token_identity(f"e30.{payload}.sig") == (DEPLOYER_OBJECT_ID, DEPLOYER_CLIENT_ID)
    assert token_identity("not-a-jwt") is None


def test_a_subnet_brought_for_the_app_must_be_delegated_to_container_apps() -> None:
    byo = Needs(SUBSCRIPTION, "westeurope", True, True, app_subnet_id=SUBNET)
    wrong = Subscription(
        set(BASE_PROVIDERS) | set(PRIVATE_NETWORK_PROVIDERS), subnets={SUBNET: ["Microsoft.Web/serverFarms"]}
    )
    (problem,) = check(wrong.get, [], byo)[0]
    assert "delegated to Microsoft.Web/serverFarms, not Microsoft.App/environments" in problem.what
    assert (
        problem.fix
        == f"`az network vnet subnet update --ids {SUBNET} --delegations Microsoft.App/environments`"
    )
    (missing,) = check(Subscription(wrong.registered).get, [], byo)[0]
    assert missing.what == f"subnet {SUBNET} does not exist"
    right = Subscription(wrong.registered, subnets={SUBNET: ["Microsoft.App/environments"]})
    assert check(right.get, [], byo) == ([], [])


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
    # dev's schema is applied by its deployment script (issue 33): no driver is needed here.
    args = ["dev", "--subscription", SUBSCRIPTION, "--applies-schema"]
    assert preflight_main(args, arm_get=ready.get, drivers=[]) == 0
    with pytest.raises(SystemExit):
        preflight_main(["nosuchstack"], arm_get=ready.get, drivers=[])


def test_in_a_brought_network_whoever_applies_the_schema_needs_the_odbc_driver(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A brought network has no subnet for the schema's deployment script: the deploying machine
    applies it, over ODBC Driver 18."""
    import preflight.__main__ as command

    brought = {
        **stack_file("dev"),
        "broadcast:network": "private",
        "broadcast:networkAppSubnetId": SUBNET,
        "broadcast:networkEndpointSubnetId": f"{HUB}/subnets/pe",
    }
    monkeypatch.setattr(command, "stack_file", lambda _stack: brought)
    ready = Subscription(
        registered=set(BASE_PROVIDERS) | set(PRIVATE_NETWORK_PROVIDERS),
        subnets={SUBNET: ["Microsoft.App/environments"]},
    )
    args = ["dev", "--subscription", SUBSCRIPTION, "--applies-schema"]
    assert preflight_main(args, arm_get=ready.get, drivers=[]) == 1
    assert "ODBC Driver 18 for SQL Server is not installed" in capsys.readouterr().out


def test_preflight_refuses_a_scale_out_the_basic_database_cannot_serve(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before any ARM read: dev on Basic with maximumInstanceCount 40 would run out of its 30 workers."""
    import preflight.__main__ as command

    config = {**stack_file("dev"), "broadcast:maximumInstanceCount": "40"}
    monkeypatch.setattr(command, "stack_file", lambda _stack: config)
    arm = Subscription(registered=set(BASE_PROVIDERS)).get
    assert preflight_main(["dev"], arm_get=arm, drivers=[]) == command.EXIT_SETTINGS
    error = capsys.readouterr().err
    assert "broadcast:maximumInstanceCount = 40: with sqlSku Basic" in error and "error 10928" in error
