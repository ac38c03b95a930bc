"""The GitHub workflows do what the README says, and what GitHub and Azure accept: every job that
reaches Azure names an environment whose OIDC subject has a federated credential in the README's
table; test jobs run where Debian's Chromium exists; every deployment is smoke-tested."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from mocks import ROOT

WORKFLOWS = ROOT / ".github" / "workflows"


def load(name: str) -> dict[str, Any]:
    document = yaml.safe_load((WORKFLOWS / name).read_text())
    # YAML 1.1 reads the key `on` as the boolean true.
    document["on"] = document.pop(True, document.get("on"))
    return dict(document)


def all_workflows() -> dict[str, dict[str, Any]]:
    return {path.name: load(path.name) for path in sorted(WORKFLOWS.glob("*.yml"))}


def matrix_rows(job: dict[str, Any]) -> list[dict[str, Any]]:
    matrix = (job.get("strategy") or {}).get("matrix") or {}
    if "include" in matrix:
        return list(matrix["include"])
    rows: list[dict[str, Any]] = [{}]
    for key, values in matrix.items():
        rows = [{**row, key: value} for row in rows for value in values]
    return rows


def expand(text: str, row: dict[str, Any]) -> str:
    return re.sub(r"\$\{\{\s*matrix\.(\w+)\s*\}\}", lambda m: str(row[m.group(1)]), text)


def azure_jobs() -> list[tuple[str, str, str]]:
    """(workflow, job, OIDC subject) of every job allowed an OIDC token."""
    found = []
    for workflow, document in all_workflows().items():
        for name, job in document["jobs"].items():
            if (job.get("permissions") or {}).get("id-token") != "write":
                continue
            assert job.get("environment"), f"{workflow}:{name} gets an OIDC token without an environment"
            for row in matrix_rows(job):
                environment = expand(str(job["environment"]), row)
                found.append((workflow, name, f"repo:<owner>/<repo>:environment:{environment}"))
    return found


def test_the_readme_lists_a_federated_credential_for_each_job_subject_and_no_other() -> None:
    """GitHub: a job with `environment: X` presents `repo:<owner>/<repo>:environment:X`."""
    readme = (ROOT / "README.md").read_text()
    table = readme.split("### Federated credentials", 1)[1].split("###", 1)[0]
    listed = set(re.findall(r"\| `(repo:<owner>/<repo>:[^`]+)` \|", table))
    needed = {subject for _, _, subject in azure_jobs()}
    assert listed == needed
    assert "pull_request`" not in table


def test_only_jobs_that_reach_azure_may_ask_for_an_oidc_token() -> None:
    for workflow, document in all_workflows().items():
        assert (document.get("permissions") or {}).get("id-token") != "write", workflow
        for name, job in document["jobs"].items():
            uses = " ".join(str(step.get("uses", "")) for step in job.get("steps", []))
            reaches_azure = "pulumi/actions" in uses or "azure/login" in uses
            has_token = (job.get("permissions") or {}).get("id-token") == "write"
            assert has_token == reaches_azure, f"{workflow}:{name}"


@pytest.mark.parametrize("workflow", ["pull-request.yml", "deploy.yml"])
def test_the_test_job_runs_setup_in_debian_where_chromium_is_a_package(workflow: str) -> None:
    """Ubuntu 24.04's archive has Chromium only as a snap; .ci/run installs Debian's `chromium`."""
    job = load(workflow)["jobs"]["test"]
    image = (job.get("container") or {}).get("image", "")
    assert re.fullmatch(r"python:3\.11-(bookworm|trixie)", image), image
    assert any(step.get("run") == "bash .ci/run" for step in job["steps"])
    assert job.get("timeout-minutes")


def test_every_deployment_is_smoke_tested_with_a_masked_key() -> None:
    up = load("deploy.yml")["jobs"]["up"]
    steps = up["steps"]
    deploy = next(i for i, step in enumerate(steps) if str(step.get("uses", "")).startswith("pulumi/actions"))
    smoke = next(i for i, step in enumerate(steps) if "python -m smoke" in str(step.get("run", "")))
    assert deploy < smoke
    script = steps[smoke]["run"]
    assert script.index("::add-mask::") < script.index("python -m smoke")
    assert '--key "$key"' in script and "siteUrl" in script


def test_the_first_deploy_creates_the_stack_with_the_committed_encryption_settings() -> None:
    up = load("deploy.yml")["jobs"]["up"]
    action = next(step for step in up["steps"] if str(step.get("uses", "")).startswith("pulumi/actions"))
    assert action["with"]["upsert"] is True
    assert "secrets-provider" in action["with"]
    guard = next(step for step in up["steps"] if "encryptionsalt" in str(step.get("run", "")))
    assert "secretsprovider" in guard["run"] and "exit 1" in guard["run"]


def test_azure_jobs_use_the_providers_oidc_not_a_cli_session() -> None:
    for workflow, name, _ in azure_jobs():
        job = load(workflow)["jobs"][name]
        assert job["env"]["ARM_USE_OIDC"] == "true", f"{workflow}:{name}"
        assert "ARM_OIDC_TOKEN" not in job["env"] and "ARM_CLIENT_SECRET" not in job["env"]
        config = next(
            step["with"].get("config-map", "")
            for step in job["steps"]
            if str(step.get("uses", "")).startswith("pulumi/actions")
        )
        assert "deployerPrincipalType: {value: ServicePrincipal" in config


def test_workflow_files_exist_as_documented() -> None:
    assert {path.name for path in WORKFLOWS.glob("*.yml")} >= {"pull-request.yml", "deploy.yml"}
    assert Path(ROOT / ".ci" / "run").read_text().count("make setup") == 1
