"""The pipeline's own logic: review stacks' stack files, listing and sweep; drift reports from
`pulumi refresh --preview-only --json` (and its failure); the secrets check before Pulumi."""

from __future__ import annotations

import json
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from deployment_script_double import DeploymentScripts

from functions.migrations import load_migrations
from mocks import ROOT, run_stack
from pipeline.cost_diff import Side, comment, committed_stacks, difference
from pipeline.cost_diff import main as cost_diff_main
from pipeline.drift import drifted, issue_body
from pipeline.drift import main as drift_main
from pipeline.pulumi_version import main as version_main
from pipeline.pulumi_version import pinned
from pipeline.review_cost import first_update, so_far
from pipeline.review_cost import main as review_cost_main
from pipeline.review_stack import instance, listed_stacks, stack_file, stack_name, to_sweep, wanted
from pipeline.review_stack import main as review_main
from pipeline.stack_secrets import check, dependabot_secret, owns, scope_errors
from pipeline.stack_secrets import main as secrets_main


def test_review_stack_names_come_from_the_pull_request_number() -> None:
    assert (stack_name(42), instance(42)) == ("pr-42", "pr42")
    with pytest.raises(ValueError, match="positive"):
        stack_name(0)


def test_a_review_stack_file_is_the_template_plus_its_instance_and_no_secrets_settings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The file is written anew on each run. Copying back only a passphrase salt turned a Key Vault
    stack into a passphrase one; with no secrets settings in the file and
    PULUMI_FALLBACK_TO_STATE_SECRETS_MANAGER set, Pulumi uses the secrets manager recorded in the
    state (pulumi/pulumi `GetSecretsManager`: "we will keep using what is already specified in the
    snapshot")."""
    (tmp_path / "Pulumi.review.yaml").write_text((ROOT / "Pulumi.review.yaml").read_text())
    assert review_main(["write", "7", "--root", str(tmp_path)]) == 0
    assert capsys.readouterr().out == "pr-7\n"
    document = yaml.safe_load((tmp_path / "Pulumi.pr-7.yaml").read_text())
    template = yaml.safe_load((ROOT / "Pulumi.review.yaml").read_text())["config"]
    assert document == {"config": {**template, "broadcast:instance": "pr7"}}
    assert document == yaml.safe_load(stack_file(7))


LISTING = [
    {"name": "dev", "current": False},
    {"name": "organization/broadcast/pr-7", "current": False},
    {"name": "pr-12", "current": True},
    {"name": "pr-x"},
    {"name": "prod"},
]


def test_a_review_stack_exists_only_when_a_listing_that_succeeded_names_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`pulumi stack ls --json`: a list of stacks with `name` (qualified on some backends)."""
    assert listed_stacks(LISTING) == {"dev", "pr-7", "pr-12", "pr-x", "prod"}
    stacks = tmp_path / "stacks.json"
    stacks.write_text(json.dumps(LISTING))
    assert review_main(["exists", "7", "--stacks", str(stacks)]) == 0
    assert review_main(["exists", "8", "--stacks", str(stacks)]) == 0
    assert capsys.readouterr().out.splitlines() == ["exists=true", "exists=false"]
    # What a failed `pulumi stack ls` leaves behind is an error, never "no stack".
    for broken in ("", "error: failed to load checkpoint", json.dumps({"name": "pr-7"})):
        stacks.write_text(broken)
        assert review_main(["exists", "7", "--stacks", str(stacks)]) == 2
        assert "exists=" not in capsys.readouterr().out
    assert review_main(["exists", "7", "--stacks", str(tmp_path / "absent.json")]) == 2


def test_the_sweep_names_review_stacks_whose_pull_request_is_not_open_with_the_label(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert to_sweep({"dev", "prod", "pr-7", "pr-12", "pr-3", "pr-x", "pr-07"}, [12]) == ["pr-3", "pr-7"]
    stacks, keep = tmp_path / "stacks.json", tmp_path / "keep.json"
    stacks.write_text(json.dumps(LISTING))
    keep.write_text(json.dumps([{"number": 12}, {"number": 40}]))
    assert review_main(["sweep", "--stacks", str(stacks), "--keep", str(keep)]) == 0
    assert capsys.readouterr().out == "pr-7\n"
    keep.write_text(json.dumps({"number": 12}))
    assert review_main(["sweep", "--stacks", str(stacks), "--keep", str(keep)]) == 2
    assert "gh pr list" in capsys.readouterr().err


def test_review_stacks_get_their_own_resource_group_and_dev_sized_resources() -> None:
    # As the workflow writes them (Pulumi.pr-<n>.yaml): the template plus the instance.
    first = run_stack("review", {"instance": yaml.safe_load(stack_file(1))["config"]["broadcast:instance"]})
    second = run_stack("review", {"instance": yaml.safe_load(stack_file(2))["config"]["broadcast:instance"]})
    groups = [
        run.one("azure-native:resources:ResourceGroup").inputs["resourceGroupName"] for run in (first, second)
    ]
    assert groups == ["rg-bcast-review-pr1", "rg-bcast-review-pr2"]
    assert "rg-bcast-dev" not in groups
    # Standard, not Free: 5 Free units per subscription and region would stop the fifth review stack.
    assert first.one("azure-native:signalrservice:SignalR").inputs["sku"]["name"] == "Standard_S1"
    assert first.one("azure-native:sql:Database").inputs["sku"] == {
        "name": "Basic",
        "tier": "Basic",
        "capacity": 5,
    }
    assert first.one("azure-native:operationalinsights:Workspace").inputs["retentionInDays"] == 30
    assert first.of_type("azure-native:authorization:ManagementLockByScope") == []


def test_a_private_review_stack_file_applies_its_schema_inside_its_own_network(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """`write <pr> --private` (the `review-private` label): the template plus `network: private`.
    Under the mocks that stack creates its own network, applies the migrations from a deployment
    script the double of the service accepts (tests/deployment_script_double.py, Azure's rules),
    connects nothing from the runner, and leaves SQL with public access disabled and no rule."""
    (tmp_path / "Pulumi.review.yaml").write_text((ROOT / "Pulumi.review.yaml").read_text())
    assert review_main(["write", "9", "--private", "--root", str(tmp_path)]) == 0
    document = yaml.safe_load((tmp_path / "Pulumi.pr-9.yaml").read_text())["config"]
    template = yaml.safe_load((ROOT / "Pulumi.review.yaml").read_text())["config"]
    assert document == {**template, "broadcast:instance": "pr9", "broadcast:network": "private"}
    assert "broadcast:network" not in yaml.safe_load(stack_file(9))["config"]
    private = run_stack("review", {"instance": "pr9", "network": "private"})
    database = tmp_path_factory.mktemp("sql") / "db.json"
    ran = DeploymentScripts(private).execute(database.parent, database)
    assert ran.outputs["applied"] == [m.name for m in load_migrations()]
    assert [r for r in private.of_type("pulumi-python:dynamic:Resource") if "migrations" in r.inputs] == []
    server = private.one("azure-native:sql:Server").inputs
    assert server["publicNetworkAccess"] == "Disabled"
    assert private.of_type("azure-native:sql:FirewallRule") == []
    group = private.one("azure-native:resources:ResourceGroup").inputs["resourceGroupName"]
    assert group == "rg-bcast-review-pr9"


def test_the_sweep_keeps_pull_requests_open_with_either_review_label(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stacks, public, private = tmp_path / "stacks.json", tmp_path / "keep.json", tmp_path / "keep-private.json"
    stacks.write_text(json.dumps([{"name": "pr-7"}, {"name": "pr-12"}, {"name": "pr-3"}]))
    public.write_text(json.dumps([{"number": 12}]))
    private.write_text(json.dumps([{"number": 7}]))
    assert review_main(["sweep", "--stacks", str(stacks), "--keep", str(public), "--keep", str(private)]) == 0
    assert capsys.readouterr().out == "pr-3\n"


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
    assert capsys.readouterr().out.splitlines() == [
        "drifted=true",
        "failed=false",
        "title=Drift in stack prod",
    ]
    refresh.write_text(json.dumps({"steps": [REFRESH["steps"][0]]}))
    assert drift_main(["prod", str(refresh), "--body", str(body)]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "drifted=false"
    refresh.write_text("not json")
    assert drift_main(["prod", str(refresh), "--body", str(body)]) == 2


def test_a_failed_refresh_opens_the_issue_with_the_end_of_its_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A refresh that exits 1 (no virtualenv, no credentials) must not read as "no drift"."""
    refresh, body, log = tmp_path / "refresh.json", tmp_path / "body.md", tmp_path / "refresh.log"
    refresh.write_text("")
    log.write_text(
        "\n".join(f"line {n}" for n in range(100))
        + "\nerror: It looks like the virtualenv .venv is missing\n"
    )
    arguments = ["prod", str(refresh), "--body", str(body), "--status", "255", "--log", str(log)]
    assert drift_main(arguments) == 0
    assert capsys.readouterr().out.splitlines() == [
        "drifted=true",
        "failed=true",
        "title=Drift in stack prod",
    ]
    text = body.read_text()
    assert "failed (exit status 255)" in text and "the virtualenv .venv is missing" in text
    assert "line 71" in text and "line 70" not in text
    refresh.write_text(json.dumps({"steps": []}))
    assert drift_main(["prod", str(refresh), "--body", str(body), "--status", "0"]) == 0
    assert capsys.readouterr().out.splitlines()[:2] == ["drifted=false", "failed=false"]


SALTED = {"encryptionsalt": "v1:abc:def", "config": {}}
VAULT = {"secretsprovider": "azurekeyvault://v.vault.azure.net/keys/pulumi-dev", "encryptedkey": "x"}
DIY = {"PULUMI_BACKEND_URL": "azblob://state-dev?storage_account=a"}
PROD = {"PULUMI_BACKEND_URL": "azblob://state-prod?storage_account=a"}
REVIEW = {"PULUMI_BACKEND_URL": "azblob://state-review?storage_account=a"}


def test_the_secrets_check_stops_on_an_empty_passphrase_token_or_provider() -> None:
    """An unset secret is the empty string, which the passphrase provider accepts; a stack with
    no provider named would get Pulumi's default one."""
    assert check("dev", SALTED, {**DIY, "PULUMI_CONFIG_PASSPHRASE": "p"}).errors == ()
    empty = check("dev", SALTED, {**DIY, "PULUMI_CONFIG_PASSPHRASE": ""})
    assert empty.provider == "passphrase" and "PULUMI_CONFIG_PASSPHRASE is empty" in empty.errors[0]
    assert "secret of the job's environment" in empty.errors[0]
    dependabot = check("prod", SALTED, {**PROD, "GITHUB_ACTOR": "dependabot[bot]"})
    assert "Dependabot secret named PULUMI_CONFIG_PASSPHRASE_PROD" in dependabot.errors[0]
    assert check("dev", VAULT, DIY).errors == ()
    nothing = check("pr-7", {}, REVIEW)
    assert nothing.provider == "" and "PULUMI_SECRETS_PROVIDER" in nothing.errors[0]
    cloud = check("dev", {}, {"PULUMI_BACKEND_URL": ""})
    assert cloud.provider == "service" and "PULUMI_ACCESS_TOKEN is empty" in cloud.errors[0]
    assert check("dev", {}, {"PULUMI_ACCESS_TOKEN": "t"}).errors == ()


def test_a_new_stack_is_created_with_the_named_provider_only_when_its_file_names_none(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    vault = "azurekeyvault://v.vault.azure.net/keys/pulumi-review"
    assert check("pr-7", {}, {**REVIEW, "PULUMI_SECRETS_PROVIDER": vault}).create_with == vault
    assert check(
        "dev", SALTED, {**DIY, "PULUMI_SECRETS_PROVIDER": vault, "PULUMI_CONFIG_PASSPHRASE": "p"}
    ) == (check("dev", SALTED, {**DIY, "PULUMI_CONFIG_PASSPHRASE": "p"}))
    review = check("pr-7", {}, {**REVIEW, "PULUMI_SECRETS_PROVIDER": "passphrase"})
    assert review.create_with == "passphrase" and "PULUMI_CONFIG_PASSPHRASE is empty" in review.errors[0]
    (tmp_path / "Pulumi.dev.yaml").write_text(yaml.safe_dump(SALTED))
    output = tmp_path / "github_output"
    env = {**DIY, "PULUMI_CONFIG_PASSPHRASE": "p"}
    assert secrets_main(["dev", "--root", str(tmp_path), "--github-output", str(output)], env) == 0
    assert output.read_text() == "provider=passphrase\nsecrets-provider=\n"
    assert secrets_main(["dev", "--root", str(tmp_path)], {**DIY}) == 1
    assert capsys.readouterr().out.splitlines()[-1].startswith("::error::PULUMI_CONFIG_PASSPHRASE is empty")
    (tmp_path / "Pulumi.dev.yaml").write_text("config: [unclosed")
    assert secrets_main(["dev", "--root", str(tmp_path)], env) == 1
    assert "Pulumi.dev.yaml is not YAML" in capsys.readouterr().out


# The pull request's cost comment (issue 24 item 3)

SIGNALR_STANDARD_MONTH = 49.10  # cost/prices.json, signalr-standard-unit (USD a unit a month)


def tree(root: Path, stacks: dict[str, dict[str, object]]) -> Path:
    """A checkout with this program and the given stack files. `settings` and `cost` are copied
    (they find the stack files beside their own resolved path); the rest is linked."""
    root.mkdir()
    for entry in ROOT.iterdir():
        if entry.name in ("settings", "cost"):
            shutil.copytree(entry, root / entry.name, ignore=shutil.ignore_patterns("__pycache__"))
        elif entry.name == "Pulumi.yaml" or not entry.name.startswith(("Pulumi.", ".")):
            (root / entry.name).symlink_to(entry)
    for stack, config in stacks.items():
        (root / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump({"config": config}))
    return root


def committed(stack: str) -> dict[str, object]:
    return dict(yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"])


def test_the_cost_comment_prices_each_stack_on_main_and_on_the_branch(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each tree's own `python -m cost <stack> --json`: one more SignalR unit in prod is its price
    line's 49.10 USD; a stack new on the branch, a stack the branch breaks and main's figures are
    each said; review stacks get their daily figure."""
    prod = committed("prod")
    base = tree(tmp_path / "main", {"prod": prod, "dev": committed("dev")})
    head = tree(
        tmp_path / "branch",
        {
            "prod": {**prod, "broadcast:signalrUnits": 2},
            "dev": {**committed("dev"), "broadcast:signalrSKU": "Standard_S1"},
            "review": committed("review"),
        },
    )
    (head / "Pulumi.pr-7.yaml").write_text((ROOT / "Pulumi.review.yaml").read_text())
    assert committed_stacks(head) == {"prod", "dev", "review"}
    assert cost_diff_main(["--base", str(base), "--head", str(head)]) == 0
    rows = {
        line.split("|")[1].strip(): line
        for line in capsys.readouterr().out.splitlines()
        if line.startswith("| `")
    }
    assert set(rows) == {"`dev`", "`prod`", "`review`"}
    assert rows["`prod`"].endswith(f"| {SIGNALR_STANDARD_MONTH:+,.2f} USD |")
    assert (
        "**no estimate**" in rows["`dev`"]
        and "signalrSKU" in rows["`dev`"]
        and rows["`dev`"].endswith("| unknown |")
    )
    assert "| no such stack |" in rows["`review`"] and "| new: +" in rows["`review`"]
    assert cost_diff_main(["--base", str(tmp_path), "--head", str(head)]) == 2


def test_the_cost_difference_is_per_currency_and_names_new_and_removed_stacks() -> None:
    assert difference({"USD": 10.0, "EUR": 2.0}, {"USD": 10.004, "EUR": 3.5}) == "+1.50 EUR"
    assert difference({"USD": 10.0}, {"USD": 10.0}) == "none"
    text = comment(
        {"dev": Side({"USD": 1.0}), "old": Side({"USD": 5.0}), "x": Side(error="bad key")},
        {
            "dev": Side({"USD": 3.0, "EUR": 1.0}),
            "x": Side({"USD": 1.0}),
            "pr": Side({"USD": 73.0}, {"USD": 2.4}),
        },
    )
    assert "| `dev` | 1.00 USD | 3.00 USD + 1.00 EUR | +2.00 USD +1.00 EUR |" in text
    assert "| `old` | 5.00 USD | removed | removed: -5.00 USD |" in text
    assert "| `x` | no estimate: bad key | 1.00 USD | unknown |" in text
    assert "A `pr` stack costs 2.40 USD a day" in text


# Issue 29: no branch reaches production's state or secrets; review stacks in order


def test_a_job_refuses_a_backend_or_key_that_is_not_its_own_state_s() -> None:
    """Item 1: one state per environment. A `PULUMI_BACKEND_URL` (or Key Vault key) shared by every
    environment, as a repository variable would be, names at most one state, so every other job
    stops before Pulumi; a look-alike (`nonprod`) is not prod's."""
    shared = {
        "PULUMI_BACKEND_URL": "azblob://pulumi-state?storage_account=a",
        "PULUMI_CONFIG_PASSPHRASE": "p",
    }
    for stack in ("dev", "prod", "pr-7"):
        errors = check(stack, SALTED, shared).errors
        assert len(errors) == 1 and "is not" in errors[0] and "own state" in errors[0], stack
    assert "-review" in check("pr-7", SALTED, shared).errors[0]
    assert owns("azblob://state-prod?storage_account=a", "prod")
    assert owns("azblob://tfstate_prod?storage_account=a", "prod")
    assert not owns("azblob://state-nonprod?storage_account=a", "prod")
    assert not owns("azblob://state?storage_account=prod", "prod")
    assert owns("file:///var/pulumi/state-review", "review") and not owns("s3://state-dev", "review")
    assert (
        scope_errors("prod", "azblob://state-prod", "azurekeyvault://kv.vault.azure.net/keys/pulumi-prod")
        == []
    )
    key = scope_errors("prod", "azblob://state-prod", "azurekeyvault://prod.vault.azure.net/keys/shared")
    assert len(key) == 1 and "not prod's own key" in key[0]
    # Pulumi Cloud: the URL says nothing; the token must be the environment's (a team token).
    assert (
        scope_errors("prod", "", "service") == [] and scope_errors("prod", "https://api.pulumi.com", "") == []
    )
    token = check("prod", {}, {"PULUMI_BACKEND_URL": ""}).errors[0]
    assert "never an organization token" in token


def test_a_dependabot_review_deploy_names_the_review_state_s_dependabot_secret() -> None:
    """Item 6: Dependabot secrets have no environments, so each state has its own name;
    `PULUMI_CONFIG_PASSPHRASE_PR-12` is not a valid secret name, `..._REVIEW` serves every review
    stack."""
    assert dependabot_secret("PULUMI_CONFIG_PASSPHRASE", "pr-12") == "PULUMI_CONFIG_PASSPHRASE_REVIEW"
    assert dependabot_secret("PULUMI_ACCESS_TOKEN", "dev") == "PULUMI_ACCESS_TOKEN_DEV"
    verdict = check("pr-12", SALTED, {**REVIEW, "GITHUB_ACTOR": "dependabot[bot]"})
    assert "Dependabot secret named PULUMI_CONFIG_PASSPHRASE_REVIEW " in verdict.errors[0]
    assert "PR-12" not in " ".join(verdict.errors)


def test_the_pulumi_cli_version_is_requirements_txt_s_pin(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Item 5: one source; a bump of `pulumi==` by Dependabot moves the CLI the workflows install."""
    assert pinned("# x\npulumi==3.300.1\npulumi-random==4.21.4\n") == "3.300.1"
    for bad, why in (
        ("pulumi>=3\n", "found 0"),
        ("pulumi==3.1\n", "not a release"),
        ("pulumi==1.0.0\n" * 2, "2"),
    ):
        with pytest.raises(ValueError, match=why):
            pinned(bad)
    output = tmp_path / "out"
    assert version_main(["--github-output", str(output)]) == 0
    sdk = re.search(r"^pulumi==(\S+)$", (ROOT / "requirements.txt").read_text(), re.M)
    assert sdk and output.read_text() == f"version={sdk.group(1)}\n"
    (tmp_path / "r.txt").write_text("pulumi-random==1.0.0\n")
    assert version_main(["--requirements", str(tmp_path / "r.txt")]) == 2
    assert "expected one `pulumi==" in capsys.readouterr().err


def requirement_pins(path: Path) -> dict[str, str]:
    """`name==version` lines of a requirements file (and the files it includes), names normalised."""
    pins: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if line.startswith("-r "):
            pins |= requirement_pins(path.parent / line[3:].strip())
        elif match := re.match(r"^([A-Za-z0-9_.\-]+)==(\S+)", line):
            pins[re.sub(r"[-_.]+", "-", match.group(1)).lower()] = match.group(2)
    return pins


def lock_entries(path: Path) -> dict[str, tuple[str, int]]:
    """Each requirement of a pip-compile lock: its version and how many hashes it carries."""
    entries: dict[str, tuple[str, int]] = {}
    for block in re.split(r"\n(?=[A-Za-z0-9])", path.read_text()):
        if match := re.match(r"^([A-Za-z0-9_.\-]+)==(\S+)", block):
            name = re.sub(r"[-_.]+", "-", match.group(1)).lower()
            entries[name] = (match.group(2), len(re.findall(r"--hash=sha256:[0-9a-f]{64}", block)))
    return entries


@pytest.mark.parametrize(
    ("lock", "sources"),
    [
        ("requirements-lock.txt", ["requirements.txt", "smoke/requirements.txt"]),
        ("policies/requirements-lock.txt", ["policies/requirements.txt"]),
    ],
)
def test_the_hashed_locks_pin_what_the_requirements_pin(lock: str, sources: list[str]) -> None:
    """Item 2: where Pulumi runs with secrets, `pip install --require-hashes -r <lock>`: every
    package (dependencies too) pinned with at least one sha256, and every pin of the requirement
    files at the same version, so the lock cannot drift from what `make setup` installs."""
    entries = lock_entries(ROOT / lock)
    assert entries and all(hashes >= 1 for _, hashes in entries.values()), lock
    for source in sources:
        for name, version in requirement_pins(ROOT / source).items():
            assert entries.get(name, ("missing", 0))[0] == version, f"{lock}: {name}=={version} ({source})"
    header = (ROOT / lock).read_text().split("\n\n", 1)[0]
    assert "--generate-hashes" in header and all(source in header for source in sources)


def test_only_this_project_s_stacks_are_listed_for_the_sweep_and_the_destroy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Item 7: a backend can hold other projects' `pr-*` stacks; the last name segment is not the
    project. Qualified names count when their project is ours; `org/stack` names none."""
    listing = [
        {"name": "organization/broadcast/pr-7"},
        {"name": "organization/other/pr-8"},
        {"name": "pr-9"},
    ]
    assert listed_stacks(listing, "broadcast") == {"pr-7", "pr-9"}
    with pytest.raises(ValueError, match="names no project"):
        listed_stacks([{"name": "organization/pr-8"}], "broadcast")
    stacks, keep = tmp_path / "stacks.json", tmp_path / "keep.json"
    stacks.write_text(json.dumps(listing))
    keep.write_text(json.dumps([{"number": 9}]))
    assert review_main(["sweep", "--json", "--stacks", str(stacks), "--keep", str(keep)]) == 0
    assert json.loads(capsys.readouterr().out) == ["pr-7"]
    assert review_main(["exists", "8", "--stacks", str(stacks)]) == 0
    assert capsys.readouterr().out == "exists=false\n"


PULL = {"state": "OPEN", "labels": [{"name": "deploy-review"}], "baseRefName": "main", "headRefOid": "b2"}


def test_a_queued_deploy_deploys_only_what_the_pull_request_still_wants(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Items 4 and 8: the payload is from when the event fired; GitHub's answer now decides."""
    assert wanted(PULL, "b2") == (True, "the pull request is open, labelled and at this commit")
    assert wanted({**PULL, "labels": [{"name": "review-private"}]}, "b2")[0]
    refusals = {
        "closed": wanted({**PULL, "state": "CLOSED"}, "b2"),
        "merged": wanted({**PULL, "state": "MERGED"}, "b2"),
        "superseded": wanted(PULL, "a1"),
        "neither": wanted({**PULL, "labels": [{"name": "bug"}]}, "b2"),
        "into release": wanted({**PULL, "baseRefName": "release"}, "b2"),
    }
    for word, (deploy, why) in refusals.items():
        assert not deploy and word in why, word
    pr = tmp_path / "pr.json"
    pr.write_text(json.dumps({**PULL, "state": "CLOSED"}))
    assert review_main(["wanted", "7", "--pr", str(pr), "--sha", "b2"]) == 0
    assert capsys.readouterr().out.splitlines() == ["deploy=false", "reason=the pull request is closed"]
    pr.write_text(json.dumps({"state": "OPEN"}))
    assert review_main(["wanted", "7", "--pr", str(pr), "--sha", "b2"]) == 2
    assert "gh pr view" in capsys.readouterr().err


def test_the_review_comment_says_what_the_stack_has_cost_so_far(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Item 10 (the comment): the estimate's daily figure times the days since the first update,
    said to be an estimate from the price snapshot. `pulumi stack history --json` prints
    `startTime` as `2006-01-02T15:04:05.000Z07:00` (pulumi/pulumi pkg/cmd/pulumi/cmd/time.go)."""
    history = [
        {"version": 3, "startTime": "2026-12-06T10:00:00.000Z"},
        {"version": 1, "startTime": "2026-12-04T10:00:00.000Z"},
    ]
    since = first_update(history)
    assert since == datetime(2026, 12, 4, 10, tzinfo=UTC)
    line = so_far({"USD": 2.4}, since, datetime(2026, 12, 6, 22, tzinfo=UTC))
    assert line.startswith(
        "Cost so far: about 6.00 USD (2.5 days since the first `up` at 2026-12-04 10:00 UTC"
    )
    assert "2.40 USD a day" in line and "not the bill" in line
    files = {"history": tmp_path / "h.json", "estimate": tmp_path / "e.json"}
    files["history"].write_text(json.dumps(history))
    files["estimate"].write_text(json.dumps({"stack": "pr-7", "daily": {"USD": 1.0, "EUR": 0.5}}))
    arguments = ["--history", str(files["history"]), "--estimate", str(files["estimate"])]
    assert review_cost_main([*arguments, "--now", "2026-12-05T10:00:00+00:00"]) == 0
    out = capsys.readouterr().out
    assert "about 1.00 USD + 0.50 EUR (1.0 days" in out and "a day from `python -m cost pr-7`" in out
    files["history"].write_text("[]")
    assert review_cost_main(arguments) == 2
    assert "pulumi stack history --json" in capsys.readouterr().err
