"""The GitHub workflows do what docs/ci-cd.md says, and what GitHub and Azure accept: every job that
reaches Azure names an environment whose OIDC subject has a federated credential in docs/ci-cd.md's
table; test jobs run where Debian's Chromium exists; every deployment is smoke-tested."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from mocks import ROOT

WORKFLOWS = ROOT / ".github" / "workflows"
# The CLI as a shell command, or the deploy command that drives it: at a line's start, or after `;`,
# `&`, `|`, `(` or `{`.
PULUMI_COMMAND = re.compile(
    r"(^|[;&|({])\s*(pulumi (login|stack|preview|up|refresh|destroy|config)|\S*python -m deploy)\b", re.M
)


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


def uses(step: dict[str, Any], action: str) -> bool:
    """Whether a step runs `action` (owner/repo[/path]), at whatever ref."""
    return str(step.get("uses", "")).split("@", 1)[0] == action


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


def test_the_ci_cd_page_lists_a_federated_credential_for_each_job_subject_and_no_other() -> None:
    """GitHub: a job with `environment: X` presents `repo:<owner>/<repo>:environment:X`."""
    page = (ROOT / "docs" / "ci-cd.md").read_text()
    table = page.split("\n## Federated credentials", 1)[1].split("\n## ", 1)[0]
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


DEPLOY_JOBS = {"dev": "dev", "test-private": "test", "prod": "prod"}


def deploy_script(name: str) -> tuple[list[dict[str, Any]], int, str]:
    """A deploy job's steps, and the index and script of the step that runs `python -m deploy`."""
    steps = load("deploy.yml")["jobs"][name]["steps"]
    index = step_with(steps, "python -m deploy")
    return steps, index, steps[index]["run"]


def test_every_deployment_runs_the_deploy_command_which_ends_with_the_smoke_test() -> None:
    """`python -m deploy <stack> --yes` runs preflight, preview with the policy pack, up, then the
    smoke test with the stack's secret `publishKey` output, inside its process (tests/test_deploy.py
    holds the steps and their order): no key is fetched with the Azure CLI, and none is printed."""
    for name in DEPLOY_JOBS:
        steps, index, script = deploy_script(name)
        assert script.rstrip().endswith('.venv/bin/python -m deploy "$STACK" --yes'), name
        assert "--preview-only" not in script and not any(
            uses(step, "pulumi/actions") and "command" in (step.get("with") or {}) for step in steps
        )
        cli = next(i for i, step in enumerate(steps) if uses(step, "pulumi/actions"))
        policy = step_with(
            steps, "policies/venv/bin/pip install --require-hashes -r policies/requirements-lock.txt"
        )
        assert cli < index and policy < index, name
    for workflow in WORKFLOWS.glob("*.yml"):
        assert "functionapp keys" not in workflow.read_text(), workflow.name


def test_the_review_smoke_test_takes_the_publish_key_output_masked() -> None:
    """pulumi/actions sets each stack output as a step output and registers secret ones with
    `core.setSecret` (src/run.ts); the step masks it again before anything can print it."""
    steps = load("review-stack.yml")["jobs"]["deploy"]["steps"]
    up = next(i for i, step in enumerate(steps) if uses(step, "pulumi/actions"))
    smoke = step_with(steps, "python -m smoke")
    assert steps[up]["id"] == "up" and up < smoke
    assert steps[smoke]["env"]["KEY"] == "${{ steps.up.outputs.publishKey }}"
    assert steps[smoke]["env"]["SITE"] == "${{ steps.up.outputs.siteUrl }}"
    script = steps[smoke]["run"]
    assert script.index('echo "::add-mask::$KEY"') < script.index("python -m smoke")
    assert '--url "$SITE" --key "$KEY"' in script and '[ -z "$KEY" ]' in script


def test_the_first_deploy_creates_the_stack_with_the_provider_the_stack_file_or_variable_names() -> None:
    """No default provider: the stack is created (`pulumi stack select --create`, or the action's
    `upsert`) with what `python -m pipeline.stack_secrets` found (empty when the committed stack
    file decides), and that check runs before Pulumi."""
    for name, stack in DEPLOY_JOBS.items():
        job = load("deploy.yml")["jobs"][name]
        assert job["env"]["STACK"] == stack
        steps, index, script = deploy_script(name)
        assert steps[index]["env"]["PROVIDER"] == "${{ steps.secrets.outputs.secrets-provider }}"
        select = 'pulumi stack select --stack "$STACK" --create ${PROVIDER:+--secrets-provider "$PROVIDER"}'
        assert script.index(select) < script.index('.venv/bin/python -m deploy "$STACK"'), name
        check = next(step for step in steps if "pipeline.stack_secrets" in str(step.get("run", "")))
        assert check["id"] == "secrets" and '"$GITHUB_OUTPUT"' in check["run"]
    review = load("review-stack.yml")["jobs"]["deploy"]["steps"]
    action = next(step for step in review if uses(step, "pulumi/actions"))
    assert action["with"]["upsert"] is True
    assert action["with"]["secrets-provider"] == "${{ steps.secrets.outputs.secrets-provider }}"


def test_the_preview_comment_carries_each_stack_s_cost_on_main_and_on_the_branch() -> None:
    """`python -m pipeline.cost_diff` needs no secret (stack files, settings, the price snapshot):
    its job names no environment and gets no id-token. GitHub: a `pull_request` run checks out the
    merge commit (GITHUB_SHA), whose first parent is the base branch's tip."""
    workflow = load("pull-request.yml")
    job = workflow["jobs"]["cost"]
    assert "permissions" not in job and "environment" not in job and "if" not in job
    assert not re.search(r"secrets\.|vars\.", yaml.safe_dump(job))
    checkout = next(step for step in job["steps"] if uses(step, "actions/checkout"))
    assert checkout["with"]["fetch-depth"] == 2 and "ref" not in checkout["with"]
    script = job["steps"][step_with(job["steps"], "pipeline.cost_diff")]["run"]
    assert 'git worktree add --detach "$RUNNER_TEMP/main" HEAD^1' in script
    assert '--base "$RUNNER_TEMP/main" --head . > cost.md' in script
    upload = next(step for step in job["steps"] if uses(step, "actions/upload-artifact"))
    assert upload["with"]["path"] == "cost.md"
    comment = workflow["jobs"]["comment"]
    download = next(step for step in comment["steps"] if uses(step, "actions/download-artifact"))
    pattern = download["with"]["pattern"]
    assert (
        re.fullmatch(pattern.replace("*", ".*"), upload["with"]["name"])
        and download["with"]["merge-multiple"]
    )
    assert "cost" in comment["needs"] and "preview" in comment["needs"]
    script = comment["steps"][step_with(comment["steps"], "gh api")]["run"]
    assert "cat cost.md" in script and script.index("cat preview-*.md") < script.index("cat cost.md")


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


def step_with(steps: list[dict[str, Any]], text: str) -> int:
    return next(i for i, step in enumerate(steps) if text in str(step.get("run", "")))


def test_review_stacks_deploy_open_labelled_pull_requests_and_are_destroyed_on_close() -> None:
    """GitHub: `pull_request` workflows do not run while the pull request has a merge conflict, so
    the destroy listens to `pull_request_target` (main's workflow and code); deploys only run for
    open pull requests, so a label added after closing deploys nothing."""
    workflow = load("review-stack.yml")
    assert workflow["on"]["pull_request"]["types"] == ["labeled", "synchronize", "reopened"]
    assert workflow["on"]["pull_request_target"]["types"] == ["closed", "unlabeled"]
    assert workflow["permissions"] == {"contents": "read"}
    deploy, destroy = workflow["jobs"]["deploy"], workflow["jobs"]["destroy"]
    assert "github.event_name == 'pull_request'" in condition(deploy)
    assert "github.event.pull_request.state == 'open'" in condition(deploy)
    assert "contains(github.event.pull_request.labels.*.name, 'deploy-review')" in condition(deploy)
    assert "github.event_name == 'pull_request_target'" in condition(destroy)
    assert "github.event.action == 'closed'" in condition(destroy)
    for job in (deploy, destroy):
        assert "github.event.pull_request.head.repo.full_name == github.repository" in condition(job)
        assert job["timeout-minutes"] <= 60 and job["environment"] == "review"
        assert job["env"]["STACK"] == "pr-${{ github.event.pull_request.number }}"
    # The destroy runs whatever any deploy did, and never checks out the pull request's code.
    assert "needs" not in destroy
    checkout = next(step for step in destroy["steps"] if uses(step, "actions/checkout"))
    assert "ref" not in checkout.get("with", {}) and "repository" not in checkout.get("with", {})
    script = destroy["steps"][step_with(destroy["steps"], "pulumi destroy")]["run"]
    assert 'pulumi destroy --stack "$STACK" --yes' in script and 'pulumi stack rm "$STACK" --yes' in script
    assert script.index("pulumi destroy") < script.index("pulumi stack rm")


def test_a_review_private_label_deploys_a_private_review_stack_checked_by_the_preflight() -> None:
    """Issue 20: either label deploys (`review-private` writes `network: private`); the stack is
    destroyed when the pull request closes or loses its last review label, and the sweep keeps pull
    requests open with either (`gh pr list --label a --label b` would ask for both)."""
    workflow = load("review-stack.yml")
    deploy, destroy, sweep = (workflow["jobs"][name] for name in ("deploy", "destroy", "sweep-list"))
    private = "contains(github.event.pull_request.labels.*.name, 'review-private')"
    assert f"|| {private})" in condition(deploy)
    assert "github.event.label.name != 'review-private'" in condition(deploy)
    assert f"&& !{private}" in condition(
        destroy
    ) and "github.event.label.name == 'review-private'" in condition(destroy)
    steps = deploy["steps"]
    write = steps[step_with(steps, "pipeline.review_stack write")]
    assert write["env"]["PRIVATE"] == "${{ " + private + " }}"
    assert 'review_stack write "$PR" --private' in write["run"]
    preflight = step_with(steps, "python -m preflight")
    assert step_with(steps, "pipeline.review_stack write") < preflight
    login = next(i for i, step in enumerate(steps) if uses(step, "azure/login"))
    up = next(i for i, step in enumerate(steps) if uses(step, "pulumi/actions"))
    assert login < preflight < up
    assert '--subscription "$ARM_SUBSCRIPTION_ID"' in steps[preflight]["run"]
    listed = sweep["steps"][step_with(sweep["steps"], "gh pr list")]["run"]
    assert "--label review-private" in listed and "> keep-private.json" in listed
    script = sweep["steps"][step_with(sweep["steps"], "pipeline.review_stack sweep")]["run"]
    assert "--keep keep.json --keep keep-private.json" in script


def test_a_missing_review_stack_is_told_apart_from_a_failing_backend() -> None:
    """A failed `pulumi stack export` used to read as "nothing to destroy": now only a listing that
    succeeded and lacks the stack does, and no Pulumi command's failure is swallowed anywhere."""
    destroy = load("review-stack.yml")["jobs"]["destroy"]
    script = destroy["steps"][step_with(destroy["steps"], "pulumi destroy")]["run"]
    listing = script.index("pulumi stack ls --json --project broadcast > stacks.json")
    assert listing < script.index("pipeline.review_stack exists") < script.index("exit 0")
    for workflow in WORKFLOWS.glob("*.yml"):
        for line in workflow.read_text().splitlines():
            if PULUMI_COMMAND.search(line):
                assert not re.search(r"2>\s*/dev/null|\|\|\s*(:|true)\b", line), f"{workflow.name}: {line}"


def test_a_daily_sweep_destroys_review_stacks_whose_pull_request_is_gone() -> None:
    workflow = load("review-stack.yml")
    assert workflow["on"]["schedule"][0]["cron"] and "workflow_dispatch" in workflow["on"]
    listing, sweep = workflow["jobs"]["sweep-list"], workflow["jobs"]["sweep"]
    assert "github.event_name == 'schedule'" in condition(listing) and listing["environment"] == "review"
    steps = listing["steps"]
    listed = step_with(steps, "gh pr list")
    assert "--state open --base main --label deploy-review" in steps[listed]["run"]
    script = steps[step_with(steps, "pipeline.review_stack sweep")]["run"]
    assert script.index("pulumi stack ls --json") < script.index("pipeline.review_stack sweep --json")
    assert listing["outputs"]["stacks"] == "${{ steps.list.outputs.stacks }}"
    assert sweep["needs"] == ["sweep-list"] and sweep["environment"] == "review"
    assert sweep["strategy"]["matrix"]["stack"] == "${{ fromJSON(needs.sweep-list.outputs.stacks) }}"
    script = sweep["steps"][step_with(sweep["steps"], "pulumi destroy")]["run"]
    assert 'pulumi destroy --stack "$STACK" --yes' in script and 'pulumi stack rm "$STACK" --yes' in script


def test_pull_request_comments_are_posted_by_jobs_that_cannot_mint_an_azure_token() -> None:
    """The workflow token may comment; a job that may also ask for an OIDC token runs only the
    first-party actions it needs, and never posts the comment itself."""
    first_party = {"actions/", "azure/login", "pulumi/actions"}
    for workflow, document in all_workflows().items():
        for name, job in document["jobs"].items():
            permissions = job.get("permissions") or {}
            if permissions.get("id-token") != "write":
                continue
            assert permissions.get("pull-requests") != "write", f"{workflow}:{name}"
            for step in job["steps"]:
                action = str(step.get("uses", ""))
                assert not action or any(action.startswith(p) for p in first_party), f"{workflow}:{name}"
                assert str((step.get("with") or {}).get("comment-on-pr", "false")) == "false"
    for workflow in ("pull-request.yml", "review-stack.yml"):
        comment = load(workflow)["jobs"]["comment"]
        assert comment["permissions"] == {"pull-requests": "write"}, workflow
        assert not any(uses(step, "actions/checkout") for step in comment["steps"]), workflow
        script = comment["steps"][step_with(comment["steps"], "gh api")]["run"]
        assert "--method PATCH" in script and "--paginate" in script and "$MARKER" in script


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
                assert "gh api" in steps and "/comments" in steps, f"{workflow}:{name}"
            if permissions.get("pull-requests") == "read":
                assert re.search(r"gh pr (list|view)", steps), f"{workflow}:{name}"
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


def test_caches_are_saved_on_main_and_restored_by_pull_requests() -> None:
    """GitHub: a run may restore caches of its own branch or the default branch; a pull request's
    own caches serve nobody else. So main saves what pull requests restore, under the same key."""
    saved = next(s for s in load("deploy.yml")["jobs"]["test"]["steps"] if uses(s, "actions/cache"))
    restored = next(
        s for s in load("pull-request.yml")["jobs"]["test"]["steps"] if uses(s, "actions/cache/restore")
    )
    assert saved["with"]["key"] == restored["with"]["key"]
    assert saved["with"]["path"] == restored["with"]["path"]
    assert "~/.cache/pip" in saved["with"]["path"] and "~/.npm" in saved["with"]["path"]
    assert "requirements" in saved["with"]["key"] and "package-lock.json" in saved["with"]["key"]
    assert not any(uses(s, "actions/cache") for s in load("pull-request.yml")["jobs"]["test"]["steps"])


# Issue 23: jobs that run, least privilege per environment, supply chain


def pulumi_jobs() -> list[tuple[str, str, dict[str, Any]]]:
    """(workflow, job, job) of every job that runs Pulumi: its action, or the CLI in a script."""
    found = []
    for workflow, document in all_workflows().items():
        for name, job in document["jobs"].items():
            if any(
                uses(s, "pulumi/actions") or PULUMI_COMMAND.search(str(s.get("run", "")))
                for s in job["steps"]
            ):
                found.append((workflow, name, job))
    return found


def first_pulumi_step(steps: list[dict[str, Any]]) -> int:
    """The first step that talks to the backend: the action with a command, or the CLI."""
    return next(
        i
        for i, step in enumerate(steps)
        if (uses(step, "pulumi/actions") and "command" in (step.get("with") or {}))
        or PULUMI_COMMAND.search(str(step.get("run", "")))
    )


def test_every_pulumi_job_signs_in_to_azure_before_its_first_pulumi_command() -> None:
    """An azblob:// backend and an azurekeyvault:// secrets provider authenticate through
    DefaultAzureCredential, which ARM_* does not feed (pulumi/pulumi#13476): the Azure CLI session
    of azure/login does, so it comes before the first command that reads the state."""
    jobs = pulumi_jobs()
    assert {(w, n) for w, n, _ in jobs} >= {
        ("deploy.yml", "dev"),
        ("deploy.yml", "prod"),
        ("deploy.yml", "test-private"),
        ("pull-request.yml", "preview"),
        ("drift.yml", "detect"),
        ("review-stack.yml", "deploy"),
        ("review-stack.yml", "destroy"),
        ("review-stack.yml", "sweep"),
    }
    for workflow, name, job in jobs:
        steps = job["steps"]
        login = next(i for i, step in enumerate(steps) if uses(step, "azure/login"))
        assert login < first_pulumi_step(steps), f"{workflow}:{name}"


def test_every_pulumi_job_creates_the_virtualenv_pulumi_yaml_names_first() -> None:
    """Pulumi runs the program, and loads the dynamic providers recorded in the state (refresh,
    destroy), with the `virtualenv` of Pulumi.yaml: without it the command exits 1."""
    virtualenv = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["runtime"]["options"]["virtualenv"]
    for workflow, name, job in pulumi_jobs():
        steps = job["steps"]
        create = next(
            i for i, s in enumerate(steps) if f"python -m venv {virtualenv} " in str(s.get("run", ""))
        )
        assert "--require-hashes -r requirements-lock.txt" in steps[create]["run"], f"{workflow}:{name}"
        assert create < first_pulumi_step(steps), f"{workflow}:{name}"


def test_a_failed_refresh_opens_the_drift_issue_and_fails_the_run() -> None:
    steps = load("drift.yml")["jobs"]["detect"]["steps"]
    refresh = steps[step_with(steps, "pulumi refresh")]
    assert "set +e" in refresh["run"] and 'echo "status=$?" >> "$GITHUB_OUTPUT"' in refresh["run"]
    report = step_with(steps, "python -m pipeline.drift")
    assert '--status "${STATUS:-1}"' in steps[report]["run"] and "--log refresh.log" in steps[report]["run"]
    assert steps[report]["env"]["STATUS"] == "${{ steps.refresh.outputs.status }}"
    issue = step_with(steps, "gh issue create")
    last = steps[-1]
    assert report < issue < len(steps) - 1
    assert last["if"] == "steps.report.outputs.failed == 'true'" and "exit 1" in last["run"]


def test_pulumi_jobs_check_their_secrets_before_pulumi_and_keep_the_state_secrets_manager() -> None:
    """An unset secret is the empty string, and a regenerated stack file without its secrets
    settings would make Pulumi pick a default provider: every Pulumi job falls back to the state's
    secrets manager (PULUMI_FALLBACK_TO_STATE_SECRETS_MANAGER) and stops on an empty passphrase,
    token or provider first. No workflow names a default provider."""
    for workflow, name, job in pulumi_jobs():
        env = job["env"]
        assert env["PULUMI_FALLBACK_TO_STATE_SECRETS_MANAGER"] == "true", f"{workflow}:{name}"
        assert env["PULUMI_SECRETS_PROVIDER"] == "${{ vars.PULUMI_SECRETS_PROVIDER }}", f"{workflow}:{name}"
        steps = job["steps"]
        check = step_with(steps, "python -m pipeline.stack_secrets")
        assert check < first_pulumi_step(steps), f"{workflow}:{name}"
    for workflow in WORKFLOWS.glob("*.yml"):
        assert "'passphrase'" not in workflow.read_text(), workflow.name


def test_dependabot_previews_read_the_dependabot_secrets() -> None:
    """GitHub: runs that Dependabot triggers get Dependabot secrets, not Actions secrets; each
    stack's passphrase is then the Dependabot secret PULUMI_CONFIG_PASSPHRASE_<STACK>."""
    env = load("pull-request.yml")["jobs"]["preview"]["env"]
    assert env["PULUMI_CONFIG_PASSPHRASE"] == (
        "${{ github.actor == 'dependabot[bot]' && "
        "secrets[format('PULUMI_CONFIG_PASSPHRASE_{0}', matrix.stack)] || secrets.PULUMI_CONFIG_PASSPHRASE }}"
    )
    page = (ROOT / "docs" / "ci-cd.md").read_text()
    for state in ("DEV", "REVIEW"):
        assert f"`PULUMI_CONFIG_PASSPHRASE_{state}`" in page


def test_secrets_and_identities_come_only_from_the_job_s_environment() -> None:
    """Each environment has its own identity (AZURE_CLIENT_ID) and secrets: a job reads them only
    when it names an environment, and no workflow-level env carries them to other jobs."""
    for workflow, document in all_workflows().items():
        top = yaml.safe_dump(document.get("env") or {})
        assert "secrets." not in top and "vars.AZURE" not in top, workflow
        for name, job in document["jobs"].items():
            text = yaml.safe_dump(job)
            reads = re.search(r"secrets\.(?!GITHUB_TOKEN)|secrets\[|vars\.AZURE_", text)
            assert not reads or job.get("environment"), f"{workflow}:{name}"


def identity_table() -> list[dict[str, str]]:
    section = (ROOT / "docs" / "ci-cd.md").read_text().split("\n## Identities", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("| `")]
    rows = []
    for line in lines:
        environment, jobs, identity, roles = [cell.strip() for cell in line.strip("|").split("|")]
        rows.append({"environment": environment, "jobs": jobs, "identity": identity, "roles": roles})
    return rows


def test_the_ci_cd_page_gives_each_environment_its_own_identity_with_least_privilege() -> None:
    """One identity per deploying environment (dev, test, production, review), one read-only
    identity for previews and drift; production's federated credential trusts one subject."""
    rows = identity_table()
    environments = {subject.rsplit(":", 1)[1] for _, _, subject in azure_jobs()}
    assert {row["environment"].strip("`") for row in rows} == environments
    by_identity: dict[str, set[str]] = {}
    for row in rows:
        by_identity.setdefault(row["identity"], set()).add(row["environment"].strip("`"))
    for identity, served in by_identity.items():
        assert len(served) == 1 or served == {"dev-preview", "prod-preview"}, identity
    for row in rows:
        roles = row["roles"].replace("Data Contributor", "Data")
        if row["environment"].strip("`").endswith("-preview"):
            assert "Reader" in roles and "Contributor" not in roles and "Administrator" not in roles
        else:
            assert "Contributor" in roles, row
    page = (ROOT / "docs" / "ci-cd.md").read_text()
    credentials = page.split("\n## Federated credentials", 1)[1].split("\n## ", 1)[0]
    prod_rows = [
        row for row in credentials.splitlines() if row.startswith("| ") and "environment:production`" in row
    ]
    assert len(prod_rows) == 1 and "`prod`" in prod_rows[0]


def test_deploy_jobs_run_from_main_only() -> None:
    """`workflow_dispatch` can start deploy.yml on any branch: every deploying job is skipped off
    main (and the environments' deployment branch policies allow main only, docs/ci-cd.md)."""
    workflow = load("deploy.yml")
    for name in DEPLOY_JOBS:
        assert "github.ref == 'refs/heads/main'" in condition(workflow["jobs"][name]), name
    page = (ROOT / "docs" / "ci-cd.md").read_text()
    assert "Prevent self-review" in page and "Deployment branches" in page


def test_each_stack_deploys_in_its_own_job_and_concurrency_group() -> None:
    """A job waiting for the production approval holds only prod's group: dev and test go on."""
    workflow = load("deploy.yml")
    assert "concurrency" not in workflow
    groups = {}
    for name in DEPLOY_JOBS:
        concurrency = workflow["jobs"][name]["concurrency"]
        assert concurrency["cancel-in-progress"] is False, name
        groups[name] = concurrency["group"]
    assert len(set(groups.values())) == len(groups)
    assert (
        workflow["jobs"]["prod"]["needs"] == ["dev", "prod-preview"]
        and workflow["jobs"]["prod"]["environment"] == "production"
    )
    assert workflow["jobs"]["test-private"]["environment"] == "test"


USES = re.compile(r"^\s*(?:-\s*)?uses:\s*(\S+)(.*)$")


def test_every_action_is_pinned_by_full_commit_sha_and_names_its_release() -> None:
    """A tag can be moved; a full commit SHA cannot. Dependabot (github-actions) updates SHA pins
    and the version comment beside them."""
    found = 0
    for workflow in WORKFLOWS.glob("*.yml"):
        for line in workflow.read_text().splitlines():
            match = USES.match(line)
            if not match or match.group(1).startswith("./"):
                continue
            found += 1
            assert re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", match.group(1)), f"{workflow.name}: {line}"
            assert re.fullmatch(r"\s*# v\d+\.\d+\.\d+", match.group(2)), f"{workflow.name}: {line}"
    assert found


def test_checkouts_keep_no_credentials_and_npm_runs_no_install_scripts() -> None:
    for workflow, document in all_workflows().items():
        for name, job in document["jobs"].items():
            for step in job["steps"]:
                if uses(step, "actions/checkout"):
                    assert step["with"]["persist-credentials"] is False, f"{workflow}:{name}"
                for command in re.findall(r"npm ci[^\n)]*", str(step.get("run", ""))):
                    assert "--ignore-scripts" in command, f"{workflow}:{name}"


def test_node_is_a_supported_lts_and_the_pulumi_cli_is_read_from_requirements_txt() -> None:
    """Node 20 reached end of life in April 2026. Issue 29 item 5: the Pulumi CLI and SDK are
    released together, and Dependabot bumps `pulumi==` in requirements.txt only, so no workflow
    writes the CLI version: each reads it there (`python -m pipeline.pulumi_version`, a step
    before the action), and no `pulumi-version` literal is left for Dependabot to miss."""
    found = 0
    for workflow, document in all_workflows().items():
        for name, job in document["jobs"].items():
            steps = job["steps"]
            for index, step in enumerate(steps):
                if uses(step, "actions/setup-node"):
                    assert step["with"]["node-version"] in ("22", "24"), f"{workflow}:{name}"
                if uses(step, "pulumi/actions"):
                    found += 1
                    assert step["with"]["pulumi-version"] == "${{ steps.pulumi-version.outputs.version }}"
                    reader = next(i for i, s in enumerate(steps) if s.get("id") == "pulumi-version")
                    assert reader < index, f"{workflow}:{name}"
                    assert steps[reader]["run"] == (
                        '.venv/bin/python -m pipeline.pulumi_version --github-output "$GITHUB_OUTPUT"'
                    )
    assert found >= 8
    for workflow in WORKFLOWS.glob("*.yml"):
        assert not re.search(r"pulumi-version:\s*[\"']?\d", workflow.read_text()), workflow.name


def test_the_github_token_reaches_only_the_steps_that_run_gh() -> None:
    for workflow, document in all_workflows().items():
        assert "GH_TOKEN" not in (document.get("env") or {}), workflow
        for name, job in document["jobs"].items():
            assert "GH_TOKEN" not in (job.get("env") or {}), f"{workflow}:{name}"
            for step in job["steps"]:
                if "GH_TOKEN" in (step.get("env") or {}):
                    assert re.search(r"\bgh (api|issue|pr|label)\b", step["run"]), f"{workflow}:{name}"


# Issue 29: no branch can reach production's state or secrets; review stacks in order


def triggered_by_pull_requests(workflow: dict[str, Any]) -> bool:
    return bool({"pull_request", "pull_request_target"} & set(workflow["on"]))


def job_events(workflow: dict[str, Any], job: dict[str, Any]) -> set[str]:
    """The events a job can run on: those its `if` names, or all of the workflow's."""
    named = set(re.findall(r"github\.event_name == '(\w+)'", condition(job)))
    return named or set(workflow["on"])


def test_no_pull_request_run_can_reach_production_s_state_or_secrets() -> None:
    """Items 1 and 2. GitHub: `pull_request` runs the branch's workflow file, so whatever a job of a
    pull-request event names is any branch's. Such jobs name only `dev-preview` and `review`, whose
    identities write no state but review's; prod's preview runs in deploy.yml on main before the
    approval (and never for Dependabot, which has no prod secret to read)."""
    reachable = set()
    for workflow_name, workflow in all_workflows().items():
        for job in workflow["jobs"].values():
            if not job.get("environment"):
                continue
            if job_events(workflow, job) & {"pull_request", "pull_request_target"}:
                for row in matrix_rows(job):
                    reachable.add(expand(str(job["environment"]), row))
        text = (WORKFLOWS / workflow_name).read_text()
        if triggered_by_pull_requests(workflow):
            assert "_PROD" not in text and "production" not in text.replace("production's", ""), workflow_name
    assert reachable == {"dev-preview", "review"}
    deploy = load("deploy.yml")["jobs"]
    preview = deploy["prod-preview"]
    assert preview["environment"] == "prod-preview" and "github.ref == 'refs/heads/main'" in condition(
        preview
    )
    assert "prod-preview" in deploy["prod"]["needs"]
    action = next(step for step in preview["steps"] if uses(step, "pulumi/actions"))
    assert action["with"]["command"] == "preview" and action["with"]["policyPacks"] == "policies"
    summary = preview["steps"][step_with(preview["steps"], "GITHUB_STEP_SUMMARY")]
    assert summary["env"]["PREVIEW"] == "${{ steps.preview.outputs.output }}"


def state_table() -> list[dict[str, str]]:
    section = (ROOT / "docs" / "ci-cd.md").read_text().split("## Who can write which state", 1)[1]
    lines = [line for line in section.split("\n## ", 1)[0].splitlines() if line.startswith("| `")]
    keys = ["state", "stacks", "container", "key", "writes", "reads", "branches"]
    return [dict(zip(keys, (c.strip() for c in line.strip("|").split("|")), strict=True)) for line in lines]


def test_each_state_has_its_own_container_key_and_writer() -> None:
    """Item 1: docs/ci-cd.md's table says who can write which state: one writer per state, no
    identity writing two, a container and a key per state named as `pipeline.stack_secrets` checks
    (`-<state>`), and nothing reachable from any branch writes prod's. docs/ci-cd.md's table of what
    the repository needs puts the backend and the provider in each environment, not the repository."""
    rows = state_table()
    assert {row["state"] for row in rows} == {"`dev`", "`test`", "`prod`", "`review`"}
    writers = [row["writes"] for row in rows]
    assert len(set(writers)) == len(writers) and all(w.count("`") == 2 for w in writers)
    for row in rows:
        state = row["state"].strip("`")
        assert row["container"] == f"`state-{state}`" and row["key"].startswith(f"`pulumi-{state}`")
        assert row["writes"] == f"`{state}`"
    prod = next(row for row in rows if row["state"] == "`prod`")
    assert prod["branches"] == "no" and "main only" in prod["reads"]
    page = (ROOT / "docs" / "ci-cd.md").read_text()
    needs = page.split("\n## What the repository needs", 1)[1].split("\n## ", 1)[0]
    for variable in ("PULUMI_BACKEND_URL", "PULUMI_SECRETS_PROVIDER", "PULUMI_ACCESS_TOKEN"):
        row = next(line for line in needs.splitlines() if f"| `{variable}` |" in line)
        assert "| each environment" in row and "| repository |" not in row, variable
    assert "never an organization token" in needs
    # Every job that runs Pulumi reads the backend from its environment's variables and checks it.
    for workflow, name, job in pulumi_jobs():
        assert job["env"]["PULUMI_BACKEND_URL"] == "${{ vars.PULUMI_BACKEND_URL }}", f"{workflow}:{name}"
        assert job.get("environment"), f"{workflow}:{name}"


def test_pulumi_runs_with_secrets_only_over_hash_checked_installs() -> None:
    """Item 2: in every job that runs Pulumi (and so holds a passphrase, a key or a token), every
    `pip install` is `--require-hashes` from a lock file."""
    for workflow, name, job in pulumi_jobs():
        for step in job["steps"]:
            for command in re.findall(r"pip install[^\n]*", str(step.get("run", ""))):
                assert re.fullmatch(r"pip install --require-hashes -r \S*requirements-lock\.txt", command), (
                    f"{workflow}:{name}: {command}"
                )
            if uses(step, "actions/setup-python") and "cache-dependency-path" in step["with"]:
                assert step["with"]["cache-dependency-path"] == "requirements-lock.txt", f"{workflow}:{name}"


def test_a_closed_pull_request_without_a_review_label_runs_and_says_nothing() -> None:
    """Item 3: the destroy runs on close only when the pull request had a review label; a destroy
    that finds no stack uploads no comment, and the comment job runs only when a deploy or a destroy
    has something to say."""
    workflow = load("review-stack.yml")
    destroy, comment = workflow["jobs"]["destroy"], workflow["jobs"]["comment"]
    closed = condition(destroy).split("github.event.action == 'closed'", 1)[1].split("||  (github", 1)[0]
    assert "contains(github.event.pull_request.labels.*.name, 'deploy-review')" in closed
    assert "contains(github.event.pull_request.labels.*.name, 'review-private')" in closed
    assert destroy["outputs"]["comment"] == "${{ steps.destroy.outputs.result != 'absent' }}"
    for step in destroy["steps"][step_with(destroy["steps"], "pulumi destroy") + 1 :]:
        assert "steps.destroy.outputs.result != 'absent'" in step["if"]
    assert "No review stack to destroy" not in yaml.safe_dump(destroy)
    assert (
        "needs.deploy.outputs.comment == 'true' || needs.destroy.outputs.comment == 'true'" in comment["if"]
    )


DEPLOYS = (
    "github.event_name == 'pull_request' && "
    "(contains(github.event.pull_request.labels.*.name, 'deploy-review') "
    "|| contains(github.event.pull_request.labels.*.name, 'review-private')) && !(github.event.action == "
    "'labeled' && github.event.label.name != 'deploy-review' && github.event.label.name != 'review-private')"
)


def test_deploys_of_one_pull_request_newest_wins_and_destroys_wait_for_none_of_them() -> None:
    """Item 4. GitHub: a concurrency group holds one running and one pending run; a newer one
    cancels the pending one, unless `queue: max` (up to 100 pending, FIFO). So deploy runs share a
    workflow-level group without a queue (newest wins, the running `up` is never interrupted), every
    other run has a group of its own, and every writer of a stack queues in the stack's job-level
    group, where nothing is cancelled and at most one deploy waits. A deploy asks GitHub for the
    pull request first and again just before `up`, and every later step depends on the answer."""
    workflow = load("review-stack.yml")
    group = " ".join(workflow["concurrency"]["group"].split())
    assert workflow["concurrency"]["cancel-in-progress"] is False and "queue" not in workflow["concurrency"]
    assert group == (
        "${{ " + DEPLOYS + " && format('review-deploy-pr-{0}', github.event.pull_request.number) "
        "|| format('review-run-{0}', github.run_id) }}"
    )
    deploy = workflow["jobs"]["deploy"]
    assert DEPLOYS.split(" && ", 1)[1] in condition(deploy)
    stack_queue = {"cancel-in-progress": False, "queue": "max"}
    for name in ("deploy", "destroy"):
        assert workflow["jobs"][name]["concurrency"] == {
            "group": "review-stack-pr-${{ github.event.pull_request.number }}",
            **stack_queue,
        }, name
    steps = deploy["steps"]
    asks = [i for i, step in enumerate(steps) if "pipeline.review_stack wanted" in str(step.get("run", ""))]
    up = next(i for i, step in enumerate(steps) if uses(step, "pulumi/actions"))
    install = step_with(steps, "pip install")
    assert len(asks) == 2 and asks[0] < install and asks[1] == up - 2
    assert [steps[i]["id"] for i in asks] == ["wanted", "still-wanted"]
    assert "set -o pipefail" in steps[asks[0]]["run"] and '--sha "$SHA"' in steps[asks[0]]["run"]
    assert steps[asks[0]]["env"]["SHA"] == "${{ github.event.pull_request.head.sha }}"
    assert deploy["permissions"]["pull-requests"] == "read"
    for step in steps[asks[0] + 1 :]:
        assert "steps.wanted.outputs.deploy == 'true'" in step["if"] or "steps.still-wanted" in step["if"]
    for step in steps[asks[1] + 1 :]:
        assert "steps.still-wanted.outputs.deploy" in step["if"], step.get("name")


def test_the_sweep_and_the_destroy_take_the_same_per_stack_queue() -> None:
    """Item 7: the sweep destroys each stack in a job of its own (a matrix over the listed stacks),
    in the group its deploy and destroy take, so two jobs never hold one stack's lock; the listing
    is of this project only (Pulumi.yaml's name, and `pipeline.review_stack` checks each name)."""
    workflow = load("review-stack.yml")
    sweep = workflow["jobs"]["sweep"]
    assert sweep["concurrency"] == {
        "group": "review-stack-${{ matrix.stack }}",
        "cancel-in-progress": False,
        "queue": "max",
    }
    assert expand(sweep["concurrency"]["group"], {"stack": "pr-7"}) == expand(
        workflow["jobs"]["destroy"]["concurrency"]["group"].replace(
            "${{ github.event.pull_request.number }}", "7"
        ),
        {},
    )
    assert sweep["env"]["STACK"] == "${{ matrix.stack }}"
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["name"]
    for name in ("sweep-list", "destroy"):
        scripts = " ".join(str(step.get("run", "")) for step in workflow["jobs"][name]["steps"])
        assert f"pulumi stack ls --json --project {project} > stacks.json" in scripts, name


def test_review_stacks_are_for_pull_requests_into_main_only() -> None:
    """Item 8: `pull_request_target` runs the base branch's workflow, so only main's destroy is
    known to exist: deploys run for pull requests into main, and the sweep keeps only those."""
    workflow = load("review-stack.yml")
    assert workflow["on"]["pull_request"]["branches"] == ["main"]
    assert workflow["on"]["pull_request_target"]["branches"] == ["main"]
    assert "github.event.pull_request.base.ref == 'main'" in condition(workflow["jobs"]["deploy"])
    listed = workflow["jobs"]["sweep-list"]["steps"]
    script = listed[step_with(listed, "gh pr list")]["run"]
    assert script.count("--base main") == script.count("gh pr list") == 2


def test_a_dependabot_review_deploy_reads_the_review_state_s_dependabot_secrets() -> None:
    """Item 6: runs that Dependabot triggers get Dependabot secrets, which have no environments."""
    env = load("review-stack.yml")["jobs"]["deploy"]["env"]
    for name in ("PULUMI_CONFIG_PASSPHRASE", "PULUMI_ACCESS_TOKEN"):
        assert env[name] == (
            f"${{{{ github.actor == 'dependabot[bot]' && secrets.{name}_REVIEW || secrets.{name} }}}}"
        )
    page = (ROOT / "docs" / "ci-cd.md").read_text()
    assert "`PULUMI_CONFIG_PASSPHRASE_REVIEW`" in page and "`PULUMI_CONFIG_PASSPHRASE_PROD`" not in page


def test_the_lock_advice_matches_the_pinned_cli() -> None:
    """Item 9: pulumi/pulumi#22385 (released in 3.229.0: changelog/v3.229.0.md, "[backend/diy]
    Remove state lock for refresh --preview-only for diy backend") makes drift's refresh take no
    lock, and `Preview` never did (pkg/backend/diy/backend.go): with the CLI pinned here, the
    read-only identity needs no write access, and the docs must not ask for it."""
    sdk = re.search(r"^pulumi==(\d+)\.(\d+)\.(\d+)$", (ROOT / "requirements.txt").read_text(), re.M)
    assert sdk and tuple(int(part) for part in sdk.groups()) >= (3, 229, 0)
    text = (ROOT / "docs" / "ci-cd.md").read_text()
    assert ".pulumi/locks" not in text and "lock write" not in text
    assert "needs no write access" in text and "3.229.0" in text


def test_the_review_comment_says_what_the_stack_has_cost_so_far() -> None:
    """Item 10 (the comment): `python -m pipeline.review_cost` over `pulumi stack history --json`
    and `python -m cost <stack> --json`, after the smoke test, and never failing the job."""
    steps = load("review-stack.yml")["jobs"]["deploy"]["steps"]
    cost = steps[step_with(steps, "pipeline.review_cost")]
    script = cost["run"]
    assert 'pulumi stack history --stack "$STACK" --json > history.json' in script
    assert '.venv/bin/python -m cost "$STACK" --json > estimate.json' in script
    assert "> cost-so-far.md ||" in script
    comment = steps[step_with(steps, "review-comment.md")]
    assert step_with(steps, "python -m smoke") < steps.index(cost) < steps.index(comment)
    assert "cat cost-so-far.md" in comment["run"]
