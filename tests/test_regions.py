"""`azure-native:location` is an Azure region (issue 32: `moon` passed the settings; the policy pack
then printed 17 identical lines and exited 1, and `cost` priced "moon" without a word)."""

from __future__ import annotations

from pathlib import Path

import pulumi
import pytest
import yaml

from mocks import ROOT
from preview.__main__ import main as preview_main
from settings import SETTINGS_BY_KEY, SettingsError, load_settings
from settings.loading import unknown_keys
from settings.regions import (
    FLEX_CONSUMPTION_REGIONS,
    GEOGRAPHIES,
    REGIONS,
    nearest_offering,
    region_problem,
    service_region_problems,
)


def load(location: str, **config: str) -> object:
    pulumi.runtime.set_all_config({f"broadcast:{key}": value for key, value in config.items()}, [])
    return load_settings(pulumi.Config("broadcast"), stack="dev", location=location)


@pytest.mark.parametrize(
    ("given", "meant"),
    [
        ("westeurop", "westeurope"),
        ("West Europe", "westeurope"),
        ("west-europe", "westeurope"),
        ("swedencentrall", "swedencentral"),
        ("eastus-2", "eastus2"),
    ],
)
def test_a_near_miss_is_refused_with_the_region_meant(given: str, meant: str) -> None:
    with pytest.raises(SettingsError) as raised:
        load(given)
    assert f"azure-native:location = {given!r} is not an Azure region name (did you mean {meant}?)" in str(
        raised.value
    )


def test_a_region_is_accepted_and_nonsense_gets_examples() -> None:
    assert region_problem("swedencentral") is None and region_problem("westeurope") is None
    problem = region_problem("moon") or ""
    assert "(e.g. westeurope, swedencentral, eastus2)" in problem and "settings/regions.py" in problem


def test_every_stack_file_names_a_known_region() -> None:
    for path in sorted(ROOT.glob("Pulumi.*.yaml")):
        location = yaml.safe_load(path.read_text())["config"]["azure-native:location"]
        assert location in REGIONS, path.name


def test_broadcast_location_points_to_the_provider_s_key() -> None:
    [error] = unknown_keys(["broadcast:location"], "dev")
    assert "the region is `azure-native:location`" in error


def test_the_offline_preview_answers_a_bad_region_with_one_line_and_exit_3(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "Pulumi.dev.yaml").write_text("config:\n  azure-native:location: moon\n")
    assert preview_main(["dev"], root=tmp_path) == 3
    captured = capsys.readouterr()
    keys = [line for line in captured.err.splitlines() if line.startswith("  - ")]
    assert captured.out == "" and len(keys) == 1  # one line per bad key
    assert "azure-native:location = 'moon' is not an Azure region name" in keys[0]


def test_cost_does_not_price_a_region_that_does_not_exist(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import cost.__main__ as command
    from settings import stack_file

    (tmp_path / "Pulumi.moon.yaml").write_text("config:\n  azure-native:location: moon\n")
    monkeypatch.setattr(command, "stack_file", lambda stack: stack_file(stack, tmp_path))
    assert command.main(["moon"]) == 3
    assert "is not an Azure region name" in capsys.readouterr().err


def test_a_flex_stack_in_a_region_without_flex_is_refused_with_the_regions_nearby() -> None:
    with pytest.raises(SettingsError) as raised:
        load("polandcentral")  # dev: hostingPlan defaults to FlexConsumption
    [line] = [line for line in str(raised.value).splitlines() if line.startswith("  - ")]
    assert line.startswith(
        "  - azure-native:location = 'polandcentral' with broadcast:hostingPlan = 'FlexConsumption': "
        "Flex Consumption is not offered there"
    )
    # Same geography first, the way out through the other key, and who decides at deploy time.
    assert (
        "did you mean westeurope, northeurope, swedencentral, or `broadcast:hostingPlan ElasticPremium`?"
        in line
    )
    assert (
        "(`az functionapp list-flexconsumption-locations`, which `python -m preflight` also asks ARM" in line
    )


def test_the_same_region_passes_with_elastic_premium() -> None:
    assert load("polandcentral", hostingPlan="ElasticPremium")


def test_a_region_of_the_same_country_is_suggested_first() -> None:
    assert nearest_offering("japanwest", FLEX_CONSUMPTION_REGIONS)[0] == "japaneast"
    assert nearest_offering("canadaeast", FLEX_CONSUMPTION_REGIONS)[0] == "canadacentral"


def test_serverless_sql_is_checked_only_for_a_serverless_sku(monkeypatch: pytest.MonkeyPatch) -> None:
    import settings.regions as regions

    monkeypatch.setattr(regions, "SQL_SERVERLESS_REGIONS", REGIONS - {"westeurope"})
    [problem] = service_region_problems("westeurope", "FlexConsumption", "GP_S_Gen5_2")
    assert "with broadcast:sqlSku = 'GP_S_Gen5_2': Azure SQL Database serverless is not offered" in problem
    assert "or a provisioned broadcast:sqlSku?" in problem
    assert service_region_problems("westeurope", "FlexConsumption", "GP_Gen5_2") == []


def test_every_stack_file_passes_the_service_snapshot() -> None:
    def value(config: dict[str, object], key: str, environment: str) -> str:
        default = SETTINGS_BY_KEY[key].default  # the environment's default where the file is silent
        return str(
            config.get(f"broadcast:{key}", default[environment] if isinstance(default, dict) else default)
        )

    paths = sorted(ROOT.glob("Pulumi.*.yaml"))
    assert len(paths) >= 4
    for path in paths:
        config = yaml.safe_load(path.read_text())["config"]
        environment = str(config.get("broadcast:environment", path.name.split(".")[1]))
        plan, sku = value(config, "hostingPlan", environment), value(config, "sqlSku", environment)
        assert service_region_problems(config["azure-native:location"], plan, sku) == [], path.name


def test_the_snapshot_is_non_trivial_and_inside_the_region_list() -> None:
    assert len(FLEX_CONSUMPTION_REGIONS) >= 25 and FLEX_CONSUMPTION_REGIONS < REGIONS
    assert {"westeurope", "northeurope", "eastus2", "swedencentral"} <= FLEX_CONSUMPTION_REGIONS
    assert {region for regions in GEOGRAPHIES.values() for region in regions} == REGIONS
