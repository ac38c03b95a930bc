"""The pipeline's own logic: review stacks' stack files, and drift reports from `pulumi refresh
--preview-only --json`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from mocks import ROOT, run_stack
from pipeline.drift import drifted, issue_body
from pipeline.drift import main as drift_main
from pipeline.review_stack import instance, stack_file, stack_name


def test_review_stack_names_come_from_the_pull_request_number() -> None:
    assert (stack_name(42), instance(42)) == ("pr-42", "pr42")
    with pytest.raises(ValueError, match="positive"):
        stack_name(0)


def test_a_review_stack_file_is_the_template_plus_its_instance_and_salt() -> None:
    """The passphrase provider keeps its salt in the stack file (Pulumi stack settings file:
    `encryptionsalt`); a review stack's file is written anew on each run, so the salt its state was
    written with is taken from `pulumi stack export` (deployment.secrets_providers)."""
    exported = {"deployment": {"secrets_providers": {"type": "passphrase", "state": {"salt": "v1:abc:def"}}}}
    document = yaml.safe_load(stack_file(7, exported))
    template = yaml.safe_load((ROOT / "Pulumi.review.yaml").read_text())["config"]
    assert document["encryptionsalt"] == "v1:abc:def"
    assert document["config"] == {**template, "broadcast:instance": "pr7"}
    assert "encryptionsalt" not in yaml.safe_load(stack_file(7))
    cloud = {"deployment": {"secrets_providers": {"type": "service", "state": {}}}}
    assert "encryptionsalt" not in yaml.safe_load(stack_file(7, cloud))


def test_review_stacks_get_their_own_resource_group_and_dev_sized_resources() -> None:
    # As the workflow writes them (Pulumi.pr-<n>.yaml): the template plus the instance.
    first = run_stack("review", {"instance": yaml.safe_load(stack_file(1))["config"]["broadcast:instance"]})
    second = run_stack("review", {"instance": yaml.safe_load(stack_file(2))["config"]["broadcast:instance"]})
    groups = [
        run.one("azure-native:resources:ResourceGroup").inputs["resourceGroupName"] for run in (first, second)
    ]
    assert groups == ["rg-bcast-review-pr1", "rg-bcast-review-pr2"]
    assert "rg-bcast-dev" not in groups
    assert first.one("azure-native:signalrservice:SignalR").inputs["sku"]["name"] == "Free_F1"
    assert first.one("azure-native:sql:Database").inputs["sku"]["capacity"] == 1
    assert first.one("azure-native:operationalinsights:Workspace").inputs["retentionInDays"] == 30
    assert first.of_type("azure-native:authorization:ManagementLockByScope") == []


SQL = "urn:pulumi:prod::broadcast::broadcast:sql:SqlDatabase"
REFRESH = {
    "steps": [
        {
            "op": "same",
            "urn": "urn:pulumi:prod::broadcast::azure-native:resources:ResourceGroup::resource-group",
        },
        {
            "op": "update",
            "urn": f"{SQL}$azure-native:sql:Server::sql-server",
            "diffReasons": ["publicNetworkAccess"],
        },
        {
            "op": "delete",
            "urn": f"{SQL}$azure-native:sql:FirewallRule::sql-firewall-x",
        },
        {
            "op": "refresh",
            "urn": "urn:pulumi:prod::broadcast::random:index/randomString:RandomString::name-suffix",
        },
    ],
    "changeSummary": {"update": 1, "delete": 1, "same": 1},
}


def test_drift_names_each_changed_resource_and_what_changed() -> None:
    changes = drifted(REFRESH)
    assert [(c.name, c.op, c.properties) for c in changes] == [
        ("azure-native:sql:Server::sql-server", "update", ("publicNetworkAccess",)),
        ("azure-native:sql:FirewallRule::sql-firewall-x", "delete", ()),
    ]
    body = issue_body("prod", changes, "https://github.com/o/r/actions/runs/1")
    assert "| `azure-native:sql:Server::sql-server` | update | `publicNetworkAccess` |" in body
    assert "found 2 resource(s)" in body and "closes itself" in body


def test_the_drift_command_says_whether_to_open_or_close_the_issue(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    refresh, body = tmp_path / "refresh.json", tmp_path / "body.md"
    refresh.write_text(json.dumps(REFRESH))
    assert drift_main(["prod", str(refresh), "--body", str(body)]) == 0
    assert capsys.readouterr().out.splitlines() == ["drifted=true", "title=Drift in stack prod"]
    refresh.write_text(json.dumps({"steps": [REFRESH["steps"][0]]}))
    assert drift_main(["prod", str(refresh), "--body", str(body)]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "drifted=false"
    refresh.write_text("not json")
    assert drift_main(["prod", str(refresh), "--body", str(body)]) == 2
