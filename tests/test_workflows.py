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
        policy = step_with(steps, "policies/venv/bin/pip install -r policies/requirements.txt")
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
    assert workflow["on"]["pull_request"] == {"types": ["labeled", "synchronize", "reopened"]}
    assert workflow["on"]["pull_request_target"] == {"types": ["closed", "unlabeled"]}
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
    deploy, destroy, sweep = (workflow["jobs"][name] for name in ("deploy", "destroy", "sweep"))
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
    listing = script.index("pulumi stack ls --json > stacks.json")
    assert listing < script.index("pipeline.review_stack exists") < script.index("exit 0")
    for workflow in WORKFLOWS.glob("*.yml"):
        for line in workflow.read_text().splitlines():
            if PULUMI_COMMAND.search(line):
                assert not re.search(r"2>\s*/dev/null|\|\|\s*(:|true)\b", line), f"{workflow.name}: {line}"


def test_review_runs_of_one_pull_request_queue_and_none_is_cancelled() -> None:
    """GitHub: a concurrency group keeps one pending run and cancels it for the next, unless
    `queue: max` (up to 100 pending, not with cancel-in-progress). Job-level groups shared by
    deploy and destroy, so a destroy waits for a deploy and is never replaced by a later event."""
    workflow = load("review-stack.yml")
    assert "concurrency" not in workflow
    for name in ("deploy", "destroy"):
        assert workflow["jobs"][name]["concurrency"] == {
            "group": "review-stack-pr-${{ github.event.pull_request.number }}",
            "cancel-in-progress": False,
            "queue": "max",
        }, name


def test_a_daily_sweep_destroys_review_stacks_whose_pull_request_is_gone() -> None:
    workflow = load("review-stack.yml")
    assert workflow["on"]["schedule"][0]["cron"] and "workflow_dispatch" in workflow["on"]
    sweep = workflow["jobs"]["sweep"]
    assert "github.event_name == 'schedule'" in condition(sweep) and sweep["environment"] == "review"
    steps = sweep["steps"]
    listed = step_with(steps, "gh pr list")
    assert "--state open --label deploy-review" in steps[listed]["run"]
    script = steps[step_with(steps, "pipeline.review_stack sweep")]["run"]
    assert script.index("pulumi stack ls --json") < script.index("pipeline.review_stack sweep")
    assert 'pulumi destroy --stack "$stack" --yes' in script and 'pulumi stack rm "$stack" --yes' in script
    assert 'exit "$failed"' in script


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
                assert "gh pr list" in steps, f"{workflow}:{name}"
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
        assert "-r requirements.txt" in steps[create]["run"], f"{workflow}:{name}"
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
    for stack in ("DEV", "PROD"):
        assert f"`PULUMI_CONFIG_PASSPHRASE_{stack}`" in page


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
        workflow["jobs"]["prod"]["needs"] == ["dev"]
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


def test_node_is_a_supported_lts_and_the_pulumi_cli_matches_the_sdk() -> None:
    """Node 20 reached end of life in April 2026; the Pulumi CLI and SDK are released together,
    so the CLI is pinned to requirements.txt's `pulumi==` version."""
    sdk = re.search(r"^pulumi==(\S+)$", (ROOT / "requirements.txt").read_text(), re.M)
    assert sdk
    for workflow, document in all_workflows().items():
        for name, job in document["jobs"].items():
            for step in job["steps"]:
                if uses(step, "actions/setup-node"):
                    assert step["with"]["node-version"] in ("22", "24"), f"{workflow}:{name}"
                if uses(step, "pulumi/actions"):
                    assert step["with"]["pulumi-version"] == sdk.group(1), f"{workflow}:{name}"


def test_the_github_token_reaches_only_the_steps_that_run_gh() -> None:
    for workflow, document in all_workflows().items():
        assert "GH_TOKEN" not in (document.get("env") or {}), workflow
        for name, job in document["jobs"].items():
            assert "GH_TOKEN" not in (job.get("env") or {}), f"{workflow}:{name}"
            for step in job["steps"]:
                if "GH_TOKEN" in (step.get("env") or {}):
                    assert re.search(r"\bgh (api|issue|pr|label)\b", step["run"]), f"{workflow}:{name}"
