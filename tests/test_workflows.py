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
        document = load(workflow)
        job = document["jobs"][name]
        env = {**(document.get("env") or {}), **(job.get("env") or {})}
        assert env["ARM_USE_OIDC"] == "true", f"{workflow}:{name}"
        assert "ARM_OIDC_TOKEN" not in env and "ARM_CLIENT_SECRET" not in env
        for step in job["steps"]:
            if str(step.get("uses", "")).startswith("pulumi/actions") and "command" in step.get("with", {}):
                assert "deployerPrincipalType: {value: ServicePrincipal" in step["with"]["config-map"]


def test_workflow_files_exist_as_documented() -> None:
    assert {path.name for path in WORKFLOWS.glob("*.yml")} >= {"pull-request.yml", "deploy.yml"}
    assert Path(ROOT / ".ci" / "run").read_text().count("make setup") == 1


# Review stacks (review-stack.yml), drift (drift.yml), Dependabot


def condition(job: dict[str, Any]) -> str:
    return " ".join(str(job.get("if", "")).split())


def test_review_stacks_deploy_on_the_label_and_are_destroyed_on_close_whatever_the_deploy_did() -> None:
    workflow = load("review-stack.yml")
    assert workflow["on"] == {
        "pull_request": {"types": ["labeled", "unlabeled", "synchronize", "reopened", "closed"]}
    }
    assert workflow["permissions"] == {"contents": "read"}
    assert workflow["env"]["STACK"] == "pr-${{ github.event.pull_request.number }}"
    deploy, destroy = workflow["jobs"]["deploy"], workflow["jobs"]["destroy"]
    assert "contains(github.event.pull_request.labels.*.name, 'deploy-review')" in condition(deploy)
    assert "github.event.action != 'closed'" in condition(deploy)
    # Forks get neither job: no secrets, no OIDC token.
    for job in (deploy, destroy):
        assert "github.event.pull_request.head.repo.full_name == github.repository" in condition(job)
        assert job["timeout-minutes"] <= 60 and job["environment"] == "review"
    # The destroy is its own job with no `needs`: it runs on `closed` whatever any deploy did.
    assert "needs" not in destroy
    assert "github.event.action == 'closed'" in condition(destroy)
    script = next(step["run"] for step in destroy["steps"] if "pulumi destroy" in str(step.get("run", "")))
    assert 'pulumi destroy --stack "$STACK" --yes' in script and 'pulumi stack rm "$STACK" --yes' in script
    assert script.index("pulumi destroy") < script.index("pulumi stack rm")


def test_review_runs_of_one_pull_request_queue_and_are_never_cancelled() -> None:
    concurrency = load("review-stack.yml")["concurrency"]
    assert concurrency == {
        "group": "review-stack-${{ github.event.pull_request.number }}",
        "cancel-in-progress": False,
    }


def test_the_review_deploy_smoke_tests_and_keeps_one_comment_updated() -> None:
    steps = load("review-stack.yml")["jobs"]["deploy"]["steps"]
    uses = [str(step.get("uses", "")) for step in steps]
    up = next(i for i, step in enumerate(steps) if (step.get("with") or {}).get("command") == "up")
    assert steps[up]["with"]["stack-name"] == "${{ env.STACK }}" and steps[up]["with"]["upsert"] is True
    smoke = next(i for i, step in enumerate(steps) if "python -m smoke" in str(step.get("run", "")))
    comment = uses.index("marocchino/sticky-pull-request-comment@v2")
    assert up < smoke < comment
    assert (
        steps[comment]["with"]["header"] == "review-stack" and steps[comment]["if"] == "${{ !cancelled() }}"
    )
    stack_file = next(
        i for i, step in enumerate(steps) if "pipeline.review_stack" in str(step.get("run", ""))
    )
    assert stack_file < up


def test_least_privilege_per_job() -> None:
    """Workflows grant only contents: read; a job adds what it uses: id-token where it reaches Azure,
    pull-requests to comment, issues to file drift."""
    for workflow, document in all_workflows().items():
        assert document["permissions"] == {"contents": "read"}, workflow
        for name, job in document["jobs"].items():
            permissions = job.get("permissions") or {}
            steps = " ".join(
                str(step.get("uses", "")) + str(step.get("run", "")) for step in job.get("steps", [])
            )
            if permissions.get("pull-requests") == "write":
                assert "sticky-pull-request-comment" in steps or "comment-on-pr" in str(job), (
                    f"{workflow}:{name}"
                )
            if permissions.get("issues") == "write":
                assert "gh issue" in steps, f"{workflow}:{name}"
            assert set(permissions) <= {"contents", "id-token", "pull-requests", "issues"}, (
                f"{workflow}:{name}"
            )


def test_drift_runs_daily_and_on_demand_reading_only() -> None:
    workflow = load("drift.yml")
    assert set(workflow["on"]) == {"schedule", "workflow_dispatch"}
    assert workflow["on"]["schedule"][0]["cron"]
    job = workflow["jobs"]["detect"]
    assert job["strategy"]["matrix"]["stack"] == ["dev", "prod"]
    assert job["environment"] == "${{ matrix.stack }}-preview"
    scripts = " ".join(str(step.get("run", "")) for step in job["steps"])
    assert 'pulumi refresh --stack "$STACK" --preview-only --json' in scripts
    assert "pulumi up" not in scripts and "pulumi refresh --yes" not in scripts
    assert "gh issue create" in scripts and "gh issue edit" in scripts and "gh issue close" in scripts


def test_dependabot_moves_the_pulumi_packages_together() -> None:
    config = yaml.safe_load((ROOT / ".github" / "dependabot.yml").read_text())
    ecosystems = {update["package-ecosystem"]: update for update in config["updates"]}
    assert set(ecosystems) == {"pip", "npm", "github-actions"}
    pip = ecosystems["pip"]
    assert set(pip["directories"]) == {"/", "/functions", "/policies", "/smoke"}
    assert "pulumi-*" in pip["groups"]["pulumi"]["patterns"]
    assert all((ROOT / d.lstrip("/") / "requirements.txt").is_file() for d in pip["directories"])
    assert ecosystems["npm"]["directory"] == "/site"


def test_the_pull_request_test_job_caches_pip_and_npm() -> None:
    steps = load("pull-request.yml")["jobs"]["test"]["steps"]
    cache = next(step for step in steps if str(step.get("uses", "")).startswith("actions/cache@"))
    assert "~/.cache/pip" in cache["with"]["path"] and "~/.npm" in cache["with"]["path"]
    assert "requirements" in cache["with"]["key"] and "package-lock.json" in cache["with"]["key"]
