"""The deploy command's steps, in order, against replaceable tools (`Tools`); each failure is a
`StepError` that names the step, what went wrong and what to do."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TextIO

import pulumi
from pulumi import automation as auto

from deploy import passphrase
from preflight.__main__ import UsageError, needs_of, subscription_of, token_identity
from preflight.checks import ArmGet, Problem, check, report
from preview.config_file import environment_config
from settings import Settings, SettingsError, load_settings, stack_file
from settings.version import project_version

ROOT = Path(__file__).resolve().parent.parent
POLICY_PACK = "policies"
REQUIRED_OUTPUTS = ("siteUrl", "publishKey")
PULUMI_INSTALL = "install it (https://www.pulumi.com/docs/install/), then `pulumi login`"
# The exit codes every command shares (README, The commands).
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_SETTINGS = 3
EXIT_NOT_SIGNED_IN = 4


class StepError(Exception):
    """A step failed: which, what happened, what to do about it, and the exit code it means."""

    def __init__(self, step: str, what: str, fix: str, code: int = EXIT_FAILED) -> None:
        super().__init__(f"step '{step}' failed: {what}\n  what to do: {fix}")
        self.step, self.what, self.fix, self.code = step, what, fix, code


@dataclass
class Tools:
    """Everything the steps reach outside this process; `deploy.automation.real_tools()` gives the
    real ones, tests give stand-ins."""

    pulumi_version: Callable[[], str]
    """The CLI's version (`PulumiCommand().version`); raises FileNotFoundError without a CLI."""
    select_stack: Callable[[str, Path], auto.Stack]
    create_stack: Callable[[str, Path], auto.Stack]
    access_token: Callable[[], str]
    """An ARM access token of the signed-in identity (Azure CLI login, or OIDC in CI)."""
    arm_reader: Callable[[str], ArmGet]
    odbc_drivers: Callable[[], list[str]]
    smoke: Callable[[list[str]], int]
    """`python -m smoke` with these arguments; its exit code."""
    estimate: Callable[[Settings, str], str]
    """The stack's monthly cost estimate, as printed lines."""
    confirm: Callable[[str], bool]
    backend_url: Callable[[], str]
    """The state backend the CLI is logged in to (`pulumi whoami`), e.g. `file://~`."""
    ask_secret: Callable[[str], str] | None
    """Reads a line without echo (getpass); None when no terminal is attached."""
    out: TextIO
    environ: MutableMapping[str, str] = field(default_factory=lambda: os.environ)
    """Where the passphrase goes for the CLI to read (this process's environment)."""
    root: Path = ROOT
    """Where the `Pulumi.<stack>.yaml` files are."""
    clock: Callable[[], float] = time.perf_counter
    policy_pack: Path = ROOT / POLICY_PACK
    """The CrossGuard pack `preview` and `up` run with (its config: `config.<environment>.json`)."""


@dataclass(frozen=True)
class Options:
    """The command line."""

    stack: str
    preview_only: bool = False
    yes: bool = False
    destroy: bool = False
    subscription: str | None = None
    verbose: bool = False


@dataclass
class Run:
    """One run: its steps' times and what they found."""

    tools: Tools
    options: Options
    timings: list[tuple[str, float]] = field(default_factory=list)
    policy_events: list[auto.events.PolicyEvent] = field(default_factory=list)

    def say(self, line: str) -> None:
        """One line of progress, at once."""
        print(line, file=self.tools.out, flush=True)

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        """Time a step and announce it."""
        self.say(f"==> {name}")
        started = self.tools.clock()
        try:
            yield
        finally:
            self.timings.append((name, self.tools.clock() - started))

    def on_event(self, event: auto.events.EngineEvent) -> None:
        """Keep the policy pack's findings (the engine's policy events) for the failure message."""
        if event.policy_event is not None:
            self.policy_events.append(event.policy_event)

    def engine_options(self, settings: Settings) -> dict[str, Any]:
        """The policy pack with this environment's config, the stream and the event handler."""
        options: dict[str, Any] = {
            "policy_packs": [str(self.tools.policy_pack)],
            "on_output": self.say,
            "on_event": self.on_event,
        }
        config = environment_config(settings.environment, self.tools.policy_pack)
        if config is not None:
            options["policy_pack_configs"] = [str(config)]
        return options


def check_cli(run: Run) -> None:
    """The Pulumi CLI is there, and new enough for the Automation API."""
    with run.step("Pulumi CLI"):
        try:
            version = run.tools.pulumi_version()
        except FileNotFoundError:
            raise StepError(
                "Pulumi CLI",
                "the `pulumi` command is not on PATH; this command drives it through the Automation API",
                f"{PULUMI_INSTALL}. Meanwhile `python -m preview {run.options.stack}` shows what the stack "
                "would create, judged by the policy pack, with no CLI and no Azure",
            ) from None
        except auto.errors.InvalidVersionError as error:
            raise StepError("Pulumi CLI", str(error), f"update the Pulumi CLI: {PULUMI_INSTALL}") from None
        run.say(f"pulumi {version}")


def read_settings(run: Run) -> tuple[dict[str, str], Settings]:
    """`Pulumi.<stack>.yaml`, validated as the program will validate it: first, as it needs nothing."""
    stack, root = run.options.stack, run.tools.root
    with run.step("settings"):
        try:
            config = stack_file(stack, root)
        except FileNotFoundError:
            stacks = sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in root.glob("Pulumi.*.yaml"))
            raise StepError(
                "settings",
                f"there is no Pulumi.{stack}.yaml",
                f"name one of the stacks ({', '.join(stacks)}), or make a stack of your own from an "
                f"environment's settings: `python -m deploy {stack} --from dev`",
                EXIT_USAGE,
            ) from None
        pulumi.runtime.set_all_config(config, [])
        try:
            settings = load_settings(pulumi.Config("broadcast"), stack=stack)
        except SettingsError as error:
            raise StepError("settings", str(error), f"correct Pulumi.{stack}.yaml", EXIT_SETTINGS) from None
        return config, settings


def secrets(run: Run) -> None:
    """The stack's secrets passphrase, when its provider is the passphrase and none is set."""
    with run.step("secrets"):
        try:
            url = run.tools.backend_url()
        except auto.errors.CommandError as error:
            raise StepError(
                "secrets",
                f"the Pulumi CLI is logged in to no backend: {_tail(error, 2)}",
                "`pulumi login --local` (state in ~/.pulumi), `pulumi login` (Pulumi Cloud) or "
                "`pulumi login azblob://<container>`",
                EXIT_NOT_SIGNED_IN,
            ) from None
        document = passphrase.stack_document(run.options.stack, run.tools.root)
        needed = passphrase.need(document, url)
        try:
            how = passphrase.provide(
                run.options.stack, needed, run.tools.environ, run.tools.ask_secret, run.say
            )
        except passphrase.PassphraseMissingError as error:
            raise StepError("secrets", str(error), passphrase.EXPORT_HINT, EXIT_NOT_SIGNED_IN) from None
        run.say(f"backend {url}: {how}")


def principal_type(claims: dict[str, Any]) -> str:
    """User or ServicePrincipal, from the access token's claims: `idtyp` says `app` for app-only
    tokens (service principals, managed identities) and `user` for users; without it, a delegated
    (user) token carries `scp`, an app-only token does not (Microsoft identity platform, access
    token claims reference)."""
    kind = claims.get("idtyp")
    if kind in ("app", "user"):
        return "ServicePrincipal" if kind == "app" else "User"
    return "User" if claims.get("scp") else "ServicePrincipal"


def token_claims(token: str) -> dict[str, Any]:
    """The payload of a JWT, unverified: only read to tell who is signed in."""
    import base64
    import json

    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError) as error:
        raise ValueError(f"the access token is not a JWT ({error})") from None
    if not isinstance(claims, dict):
        raise ValueError("the access token's payload is not a JSON object")
    return claims


def sign_in(run: Run) -> tuple[str, str]:
    """The signed-in identity's ARM token and its principal type."""
    with run.step("identity"):
        try:
            token = run.tools.access_token()
            claims = token_claims(token)
        except Exception as error:  # the credential chain raises several kinds
            # DefaultAzureCredential's message lists every credential it tried: its first line says
            # what happened, the rest is for --verbose.
            reason = str(error) if run.options.verbose else (str(error).splitlines() or [""])[0]
            raise StepError(
                "identity",
                f"no Azure sign-in: {reason}",
                "`az login` on a workstation; in CI, ARM_CLIENT_ID, ARM_TENANT_ID and ARM_USE_OIDC=true",
                EXIT_NOT_SIGNED_IN,
            ) from None
        kind = principal_type(claims)
        who = claims.get("upn") or claims.get("unique_name") or claims.get("appid") or claims.get("oid")
        run.say(f"signed in as {who} ({kind})")
        return token, kind


def preflight(run: Run, config: dict[str, str], settings: Settings, token: str) -> None:
    """The subscription's and this machine's prerequisites, each missing one with its fix."""
    with run.step("preflight"):
        arm = run.tools.arm_reader(token)
        try:
            subscription = subscription_of(config, run.options.subscription, arm)
        except UsageError as error:
            raise StepError("preflight", str(error), "pass --subscription <id>", EXIT_USAGE) from None
        needs = needs_of(settings, subscription, token_identity(token))
        # A preview applies no schema; a private stack's own network applies it in a deployment script.
        needs = replace(needs, schema_from_here=not run.options.preview_only and not needs.schema_in_network)
        problems, skipped = check(arm, run.tools.odbc_drivers(), needs)
        if not (run.tools.policy_pack / "venv").is_dir():
            problems.append(
                Problem(
                    "the policy pack's environment policies/venv does not exist",
                    "`make deploy` creates it, or: `python3 -m venv policies/venv && "
                    "policies/venv/bin/pip install -r policies/requirements.txt`",
                )
            )
        for reason in skipped:
            run.say(f"not checked: {reason}")
        if problems:
            raise StepError("preflight", report(problems), "apply each fix above, then run this again")
        run.say(f"subscription {subscription} and this machine are ready")


def open_stack(run: Run, principal: str | None, settings: Settings) -> auto.Stack:
    """Select the stack, or create it from `Pulumi.<stack>.yaml`; set who deploys."""
    name = run.options.stack
    with run.step("stack"):
        try:
            stack = run.tools.select_stack(name, run.tools.root)
            run.say(f"selected stack {name}")
        except auto.errors.StackNotFoundError:
            if run.options.destroy:
                raise StepError("stack", f"the backend has no stack {name}", "nothing to destroy") from None
            stack = _create(run, name)
        except auto.errors.CommandError as error:
            raise StepError("stack", _tail(error), "`pulumi login` to the stack's backend") from None
        if principal is not None and principal != settings.deployer_principal_type:
            stack.set_config("broadcast:deployerPrincipalType", auto.ConfigValue(value=principal))
            run.say(f"deployerPrincipalType: {principal} (the signed-in identity)")
        return stack


def _create(run: Run, name: str) -> auto.Stack:
    try:
        stack = run.tools.create_stack(name, run.tools.root)
    except auto.errors.CommandError as error:
        raise StepError(
            "stack",
            _tail(error),
            "`pulumi login` to a backend; with a self-managed one set PULUMI_CONFIG_PASSPHRASE",
        ) from None
    run.say(f"created stack {name} from Pulumi.{name}.yaml")
    return stack


def _tail(error: BaseException, lines: int = 12) -> str:
    """The last lines of a CLI failure (its stderr ends with the reason)."""
    text = [line for line in str(error).splitlines() if line.strip()]
    return "\n".join(text[-lines:])


def preview(run: Run, stack: auto.Stack, settings: Settings) -> str:
    """The preview with the policy pack; returns the change summary."""
    with run.step("preview"):
        try:
            result = stack.preview(**run.engine_options(settings))
        except auto.errors.CommandError as error:
            raise _engine_failure(run, "preview", error) from None
        changes = {str(getattr(op, "value", op)): count for op, count in result.change_summary.items()}
        summary = ", ".join(f"{count} to {op}" for op, count in sorted(changes.items()) if op != "same")
        run.say(f"changes: {summary or 'none'}")
        return summary


def _engine_failure(run: Run, step: str, error: auto.errors.CommandError) -> StepError:
    mandatory = [e for e in run.policy_events if e.enforcement_level == "mandatory"]
    if mandatory:
        lines = [f"policy {e.policy_name} on {e.resource_urn or 'the stack'}: {e.message}" for e in mandatory]
        return StepError(
            step,
            "the policy pack refused the plan:\n  " + "\n  ".join(lines),
            "change the settings or the program so each rule holds (docs/policies.md); "
            f"`python -m preview {run.options.stack}` shows the same findings offline",
        )
    if isinstance(error, auto.errors.ConcurrentUpdateError):
        return StepError(step, "another update of this stack is running", "wait for it, or `pulumi cancel`")
    fix = (
        "fix the cause above and run this again: what `up` created is in the stack's state"
        if step == "up"
        else "fix the cause above and run this again"
    )
    return StepError(step, _tail(error), fix)


def up(run: Run, stack: auto.Stack, settings: Settings) -> dict[str, Any]:
    """`pulumi up` with its progress streamed; returns the outputs (secrets in the clear)."""
    with run.step("up"):
        try:
            result = stack.up(**run.engine_options(settings))
        except auto.errors.CommandError as error:
            raise _engine_failure(run, "up", error) from None
        outputs = {key: value.value for key, value in result.outputs.items()}
        missing = [key for key in REQUIRED_OUTPUTS if not outputs.get(key)]
        if missing:
            raise StepError(
                "up",
                f"the stack has no output {', '.join(missing)}",
                "the program exports them: update this checkout (git pull) and run again",
            )
        return outputs


def smoke(run: Run, outputs: dict[str, Any]) -> None:
    """The deployment end to end, publishing with the stack's publish key."""
    with run.step("smoke test"):
        code = run.tools.smoke(["--url", str(outputs["siteUrl"]), "--key", str(outputs["publishKey"])])
        if code != 0:
            raise StepError(
                "smoke test",
                "a check of the deployment failed (its line above says what came back)",
                "a fresh app can take minutes to start its triggers: run `python -m smoke --url "
                f'{outputs["siteUrl"]} --key "$(pulumi stack output --show-secrets publishKey)"` again; '
                "if it still fails, docs/production.md, Alerts, says where to look",
            )


def summary(run: Run, settings: Settings, site_url: str | None) -> None:
    """What the user came for: the site, how long each step took, what the stack costs."""
    if site_url:
        run.say(f"site: {site_url}")
    for name, seconds in run.timings:
        run.say(f"  {name:<12} {seconds:8.1f} s")
    run.say(run.tools.estimate(settings, run.options.stack))


def confirm(run: Run, question: str) -> None:
    """Ask, unless --yes."""
    if run.options.yes:
        return
    if not run.tools.confirm(question):
        raise StepError("confirm", "not confirmed", "answer y, or pass --yes (CI)")


def announce(run: Run, action: str) -> None:
    """The version being deployed (pyproject.toml; the resource group's `version` tag)."""
    run.say(f"broadcast {project_version()}: {action} stack {run.options.stack}")


def deploy(run: Run) -> None:
    """Every step of a deployment, in order: what needs nothing first (the stack file and its
    settings), then the CLI, its backend and the passphrase, then Azure."""
    announce(run, "preview only," if run.options.preview_only else "deploying")
    config, settings = read_settings(run)
    check_cli(run)
    secrets(run)
    token, principal = sign_in(run)
    preflight(run, config, settings, token)
    stack = open_stack(run, principal, settings)
    changes = preview(run, stack, settings)
    if run.options.preview_only:
        summary(run, settings, None)
        return
    confirm(run, f"Deploy stack {run.options.stack} ({changes or 'no changes'})?")
    outputs = up(run, stack, settings)
    smoke(run, outputs)
    summary(run, settings, str(outputs["siteUrl"]))


def protected_steps(stack: str) -> str:
    """How to delete a stack that protects its data, on purpose (docs/production.md, Protection)."""
    return (
        f"the stack protects its data (protectData: true): locks and `protect` stop a destroy half-way, "
        f"so nothing was deleted. To delete it on purpose:\n"
        f"    pulumi config set protectData false --stack {stack}\n"
        f"    python -m deploy {stack} --yes            # removes the locks and protect flags\n"
        f"    python -m deploy {stack} --destroy\n"
        "  (the Key Vault's purge protection stays: its name is kept for 90 days)"
    )


def destroy(run: Run) -> None:
    """Delete the stack's resources, unless it protects its data."""
    announce(run, "destroying")
    _, settings = read_settings(run)
    if settings.protect_data:
        raise StepError("destroy", protected_steps(run.options.stack), "run the commands above")
    check_cli(run)
    secrets(run)
    stack = open_stack(run, None, settings)
    confirm(run, f"Delete every resource of stack {run.options.stack}?")
    with run.step("destroy"):
        try:
            stack.destroy(on_output=run.say, on_event=run.on_event)
        except auto.errors.CommandError as error:
            raise _engine_failure(run, "destroy", error) from None
    for name, seconds in run.timings:
        run.say(f"  {name:<12} {seconds:8.1f} s")
