"""`python -m deploy`: the steps, their order and each failure's message, driven against a stand-in
for the Automation API's stack objects.

The stand-in behaves as `pulumi.automation` does (checked against the installed SDK): every call's
arguments must bind to the real `Stack` method's signature; `select_stack` of a stack the backend
lacks raises what `create_command_error` makes of the CLI's "no stack named 'dev' found"; preview and
up report policy findings as `EngineEvent(policy_event=PolicyEvent(...))` to `on_event` and fail as a
non-zero CLI exit (`CommandError`); `up` returns an `UpResult` whose outputs are `OutputValue`s, secrets
in the clear (`show_secrets` defaults to True); `PulumiCommand` raises FileNotFoundError when there is
no `pulumi` on PATH (it runs `pulumi version` with subprocess) and InvalidVersionError when the CLI is
older than the SDK's minimum."""

from __future__ import annotations

import base64
import inspect
import io
import json
import re
import shutil
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from pulumi import automation as auto
from pulumi.automation import events
from test_preflight import Subscription

from deploy.__main__ import main
from deploy.automation import estimate
from deploy.steps import Tools
from mocks import ROOT, SUBSCRIPTION
from preflight.checks import BASE_PROVIDERS, ODBC_DRIVER

SITE = "https://stbcastdevx7k2q9.z6.web.core.windows.net/"
PUBLISH_KEY = "publish-key-from-outputs"
URN = "urn:pulumi:dev::broadcast::broadcast:static_site:StaticSite$azure-native:storage:StorageAccount::site"


def cli_error(stderr: str, stdout: str = "") -> auto.errors.CommandError:
    """The error the Automation API raises for a failed CLI run, classified as it classifies it."""
    return auto.errors.create_command_error(auto.CommandResult(stdout, stderr, 255))


class Backend:
    """The state backend and the CLI as the Automation API drives them; `calls` records the order."""

    def __init__(self, stacks: set[str] | None = None, root: Path = ROOT) -> None:
        self.stacks = set(stacks or ())
        self.root = root
        self.calls: list[str] = []
        self.config: dict[str, str] = {}
        self.violation: events.PolicyEvent | None = None
        self.up_error: auto.errors.CommandError | None = None
        self.outputs = {"siteUrl": SITE, "publishKey": PUBLISH_KEY}
        self.engine_options: dict[str, Any] = {}

    def select(self, name: str, work_dir: Path) -> FakeStack:
        self.calls.append(f"select {name}")
        assert work_dir == self.root
        if name not in self.stacks:
            raise cli_error(f"error: no stack named '{name}' found")
        return FakeStack(name, self)

    def create(self, name: str, work_dir: Path) -> FakeStack:
        self.calls.append(f"create {name}")
        if name in self.stacks:
            raise cli_error(f"error: stack '{name}' already exists")
        self.stacks.add(name)
        return FakeStack(name, self)


class FakeStack:
    """`auto.Stack` as the deploy command uses it."""

    def __init__(self, name: str, backend: Backend) -> None:
        self.name, self.backend = name, backend

    def _call(self, method: str, *args: Any, **kwargs: Any) -> None:
        inspect.signature(getattr(auto.Stack, method)).bind(self, *args, **kwargs)
        self.backend.calls.append(method)

    def _engine(self, kwargs: dict[str, Any]) -> None:
        self.backend.engine_options = kwargs
        kwargs["on_output"](f"Updating ({self.name})")
        if self.backend.violation is not None:
            kwargs["on_event"](
                events.EngineEvent(sequence=1, timestamp=0, policy_event=self.backend.violation)
            )
            raise cli_error("error: preview failed: 1 mandatory policy violation")

    def set_config(self, key: str, value: auto.ConfigValue, *, path: bool = False) -> None:
        self._call("set_config", key, value, path=path)
        self.backend.config[key] = value.value

    def preview(self, **kwargs: Any) -> auto.PreviewResult:
        self._call("preview", **kwargs)
        self._engine(kwargs)
        return auto.PreviewResult("", "", {events.OpType.CREATE: 61, events.OpType.SAME: 0})

    def up(self, **kwargs: Any) -> auto.UpResult:
        self._call("up", **kwargs)
        self._engine(kwargs)
        if self.backend.up_error is not None:
            raise self.backend.up_error
        summary = auto.UpdateSummary("update", datetime.now(), "", {}, {}, "succeeded")
        outputs = {
            key: auto.OutputValue(value, key == "publishKey") for key, value in self.backend.outputs.items()
        }
        return auto.UpResult("", "", summary, outputs)

    def destroy(self, **kwargs: Any) -> auto.DestroyResult:
        self._call("destroy", **kwargs)
        summary = auto.UpdateSummary("destroy", datetime.now(), "", {}, {}, "succeeded")
        return auto.DestroyResult("", "", summary)


def token(**claims: Any) -> str:
    """An Entra access token's shape: header.payload.signature, base64url without padding."""

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'typ': 'JWT', 'alg': 'RS256'})}.{part(claims)}.c2lnbmF0dXJl"


USER = {
    "upn": "ana@contoso.example",
    "oid": "11111111-2222-3333-4444-555555555555",
    "idtyp": "user",
    "scp": "user_impersonation",
}
APP = {
    "appid": "22222222-0000-0000-0000-000000000000",
    "oid": "33333333-0000-0000-0000-000000000000",
    "idtyp": "app",
}


class Harness:
    """Tools around a `Backend`, a subscription and the smoke test, recording what ran."""

    def __init__(self, tmp_path: Path, backend: Backend | None = None) -> None:
        self.backend = backend or Backend()
        self.subscription = Subscription(registered=set(BASE_PROVIDERS))
        self.smoke_runs: list[list[str]] = []
        self.smoke_code = 0
        self.questions: list[str] = []
        self.answer = True
        self.claims: dict[str, Any] = USER
        self.version: Callable[[], str] = lambda: "3.190.0"
        self.out = io.StringIO()
        self.pack = tmp_path / "policies"
        (self.pack / "venv").mkdir(parents=True)
        shutil.copy(ROOT / "policies" / "config.dev.json", self.pack / "config.dev.json")
        self.now = 0.0
        self.drivers = [ODBC_DRIVER]
        self.backend_url = "https://api.pulumi.com"
        """Pulumi Cloud: no passphrase (tests of the passphrase set a self-managed backend)."""
        self.environ: dict[str, str] = {}
        self.typed: list[str] = []
        """What the user types at each hidden prompt, in order; the prompts land in `prompts`."""
        self.prompts: list[str] = []
        self.terminal = True
        self.root = ROOT

    def clock(self) -> float:
        self.now += 1.5
        return self.now

    def smoke(self, arguments: list[str]) -> int:
        self.smoke_runs.append(arguments)
        return self.smoke_code

    def confirm(self, question: str) -> bool:
        self.questions.append(question)
        return self.answer

    def getpass(self, prompt: str) -> str:
        self.prompts.append(prompt)
        return self.typed.pop(0)

    def tools(self) -> Tools:
        return Tools(
            pulumi_version=lambda: self.version(),
            select_stack=self.backend.select,
            create_stack=self.backend.create,
            access_token=lambda: token(**self.claims),
            arm_reader=lambda arm_token: self.subscription.get,
            odbc_drivers=lambda: self.drivers,
            smoke=self.smoke,
            estimate=estimate,
            confirm=self.confirm,
            backend_url=lambda: self.backend_url,
            ask_secret=self.getpass if self.terminal else None,
            out=self.out,
            environ=self.environ,
            root=self.root,
            clock=self.clock,
            policy_pack=self.pack,
        )

    def run(self, *argv: str) -> tuple[int, str]:
        code = main([*argv, "--subscription", SUBSCRIPTION], tools=self.tools())
        return code, self.out.getvalue()


def steps(output: str) -> list[str]:
    return [line[4:] for line in output.splitlines() if line.startswith("==> ")]


DEPLOY_STEPS = [
    "settings",
    "Pulumi CLI",
    "secrets",
    "identity",
    "preflight",
    "stack",
    "preview",
    "up",
    "smoke test",
]


def test_a_deploy_runs_every_step_in_order_and_prints_url_times_and_cost(tmp_path: Path) -> None:
    harness = Harness(tmp_path)
    code, out = harness.run("dev")
    assert code == 0, out
    assert steps(out) == DEPLOY_STEPS
    assert harness.backend.calls == ["select dev", "create dev", "preview", "up"]
    assert "created stack dev from Pulumi.dev.yaml" in out and "changes: 61 to create" in out
    assert harness.backend.engine_options["policy_packs"] == [str(harness.pack)]
    assert harness.backend.engine_options["policy_pack_configs"] == [str(harness.pack / "config.dev.json")]
    assert "Updating (dev)" in out  # the engine's progress, streamed
    assert harness.smoke_runs == [["--url", SITE, "--key", PUBLISH_KEY]]
    assert harness.questions == ["Deploy stack dev (61 to create)?"]
    assert f"site: {SITE}" in out and "monthly estimate for stack dev" in out
    assert re.search(r"^  up +1\.5 s$", out, re.MULTILINE)  # each step's time, from the clock
    assert harness.backend.config == {}  # a user, as Pulumi.dev.yaml already says


def test_a_service_principal_is_written_as_the_deployer_and_a_stack_is_selected(
    tmp_path: Path,
) -> None:
    harness = Harness(tmp_path, Backend(stacks={"dev"}))
    harness.claims = APP
    code, out = harness.run("dev", "--yes")
    assert code == 0, out
    assert harness.backend.calls == ["select dev", "set_config", "preview", "up"]
    assert harness.backend.config == {"broadcast:deployerPrincipalType": "ServicePrincipal"}
    assert "signed in as 22222222-0000-0000-0000-000000000000 (ServicePrincipal)" in out
    assert harness.questions == []


def test_without_the_pulumi_cli_nothing_else_runs(tmp_path: Path) -> None:
    harness = Harness(tmp_path)

    def missing() -> str:
        raise FileNotFoundError(2, "No such file or directory: 'pulumi'")

    harness.version = missing
    code, out = harness.run("dev")
    assert code == 1 and steps(out) == ["settings", "Pulumi CLI"] and harness.backend.calls == []
    assert "step 'Pulumi CLI' failed: the `pulumi` command is not on PATH" in out
    assert "what to do: install it (https://www.pulumi.com/docs/install/)" in out
    assert "`python -m preview dev` shows what the stack would create" in out


def test_a_cli_older_than_the_sdk_needs_is_named(tmp_path: Path) -> None:
    harness = Harness(tmp_path)

    def old() -> str:
        raise auto.errors.InvalidVersionError("Minimum version requirement failed. ... 3.1.0 ...")

    harness.version = old
    code, out = harness.run("dev")
    assert code == 1 and "step 'Pulumi CLI' failed: Minimum version requirement failed" in out
    assert "what to do: update the Pulumi CLI" in out


def test_a_mandatory_policy_violation_stops_at_the_preview_naming_rule_and_resource(tmp_path: Path) -> None:
    harness = Harness(tmp_path)
    harness.backend.violation = events.PolicyEvent(
        message="Storage accounts accept HTTPS only.",
        color="never",
        policy_name="storage-https-only",
        policy_pack_name="broadcast-policies",
        policy_pack_version="1.0.0",
        policy_pack_version_tag="1.0.0",
        enforcement_level="mandatory",
        resource_urn=URN,
    )
    code, out = harness.run("dev", "--yes")
    assert code == 1 and steps(out)[-1] == "preview" and "up" not in harness.backend.calls
    assert (
        f"step 'preview' failed: the policy pack refused the plan:\n  policy storage-https-only on {URN}"
        in out
    )
    assert "what to do: change the settings or the program so each rule holds" in out


def test_a_failed_up_names_the_step_the_cause_and_that_state_is_kept(tmp_path: Path) -> None:
    harness = Harness(tmp_path)
    harness.backend.up_error = cli_error(
        'error: update failed\n  azure-native:sql:Server (sql-server): Code="RegionDoesNotAllowProvisioning"'
    )
    code, out = harness.run("dev", "--yes")
    assert code == 1 and harness.smoke_runs == []
    assert "step 'up' failed:" in out and "RegionDoesNotAllowProvisioning" in out
    assert "what `up` created is in the stack's state" in out


def test_a_concurrent_update_says_wait_or_cancel(tmp_path: Path) -> None:
    harness = Harness(tmp_path)
    harness.backend.up_error = cli_error("[409] Conflict: Another update is currently in progress.")
    code, out = harness.run("dev", "--yes")
    assert code == 1 and "another update of this stack is running" in out and "`pulumi cancel`" in out


def test_outputs_without_the_publish_key_are_refused(tmp_path: Path) -> None:
    harness = Harness(tmp_path)
    del harness.backend.outputs["publishKey"]
    code, out = harness.run("dev", "--yes")
    assert code == 1 and "step 'up' failed: the stack has no output publishKey" in out
    assert harness.smoke_runs == []


def test_a_failed_smoke_test_names_the_step(tmp_path: Path) -> None:
    harness = Harness(tmp_path)
    harness.smoke_code = 1
    code, out = harness.run("dev", "--yes")
    assert code == 1 and steps(out)[-1] == "smoke test"
    assert "step 'smoke test' failed" in out and "pulumi stack output --show-secrets publishKey" in out


def test_preview_only_changes_nothing_and_needs_no_odbc_driver(tmp_path: Path) -> None:
    harness = Harness(tmp_path, Backend(stacks={"dev"}))
    harness.drivers = []
    code, out = harness.run("dev", "--preview-only")
    assert code == 0 and harness.backend.calls == ["select dev", "preview"] and harness.questions == []
    assert "monthly estimate for stack dev" in out


def test_an_unconfirmed_deploy_stops_before_up(tmp_path: Path) -> None:
    harness = Harness(tmp_path)
    harness.answer = False
    code, out = harness.run("dev")
    assert code == 1 and "up" not in harness.backend.calls
    assert "step 'confirm' failed: not confirmed\n  what to do: answer y, or pass --yes (CI)" in out


def test_missing_prerequisites_stop_before_the_stack_with_each_fix(tmp_path: Path) -> None:
    harness = Harness(tmp_path)
    harness.subscription = Subscription(registered=set(BASE_PROVIDERS) - {"Microsoft.SignalRService"})
    shutil.rmtree(harness.pack / "venv")
    harness.drivers = []
    code, out = harness.run("dev")
    assert code == 1 and harness.backend.calls == [] and steps(out)[-1] == "preflight"
    assert (
        f"`az provider register --namespace Microsoft.SignalRService --subscription {SUBSCRIPTION} --wait`"
        in out
    )
    assert "the policy pack's environment policies/venv does not exist" in out
    # dev's schema is applied by its deployment script (issue 33): no driver is asked for here.
    assert "ODBC Driver 18" not in out


def test_no_sign_in_is_named(tmp_path: Path) -> None:
    harness = Harness(tmp_path)
    tools = harness.tools()

    def signed_out() -> str:
        raise RuntimeError("Please run 'az login' to setup account.\nAttempted credentials:\n\tone\n\ttwo")

    tools.access_token = signed_out
    code = main(["dev"], tools=tools)
    assert code == 4 and "step 'identity' failed: no Azure sign-in" in harness.out.getvalue()
    assert "Attempted credentials" not in harness.out.getvalue()  # the SDK's list: --verbose
    assert "`az login` on a workstation" in harness.out.getvalue()


def test_a_bad_setting_or_stack_is_named(tmp_path: Path) -> None:
    harness = Harness(tmp_path)
    code, out = harness.run("nosuchstack")
    assert code == 2 and "step 'settings' failed: there is no Pulumi.nosuchstack.yaml" in out
    assert "name one of the stacks (dev, prod, review, test)" in out
    assert "`python -m deploy nosuchstack --from dev`" in out


def test_a_protected_stack_gets_the_steps_instead_of_a_destroy(tmp_path: Path) -> None:
    harness = Harness(tmp_path, Backend(stacks={"prod"}))
    code, out = harness.run("prod", "--destroy", "--yes")
    assert code == 1 and harness.backend.calls == []
    assert "pulumi config set protectData false --stack prod" in out
    assert "python -m deploy prod --yes" in out and "python -m deploy prod --destroy" in out


def test_destroy_deletes_an_unprotected_stack_and_refuses_a_missing_one(tmp_path: Path) -> None:
    harness = Harness(tmp_path, Backend(stacks={"dev"}))
    code, out = harness.run("dev", "--destroy", "--yes")
    assert code == 0 and harness.backend.calls == ["select dev", "destroy"]
    missing = Harness(tmp_path / "other")
    code, out = missing.run("dev", "--destroy", "--yes")
    assert code == 1 and "step 'stack' failed: the backend has no stack dev" in out
    assert missing.backend.calls == ["select dev"]


def test_conflicting_flags_are_refused() -> None:
    with pytest.raises(SystemExit):
        main(["dev", "--destroy", "--preview-only"], tools=None)


def test_an_unknown_subscription_is_a_preflight_step_error(tmp_path: Path, monkeypatch: Any) -> None:
    """With no `--subscription`, no stack or environment subscription, and a sign-in whose
    subscription list ARM does not give, the preflight step says to pass `--subscription`."""
    for variable in ("ARM_SUBSCRIPTION_ID", "AZURE_SUBSCRIPTION_ID"):
        monkeypatch.delenv(variable, raising=False)
    harness = Harness(tmp_path)
    code = main(["dev"], tools=harness.tools())
    out = harness.out.getvalue()
    assert code == 2 and harness.backend.calls == [] and steps(out)[-1] == "preflight"
    assert "say which subscription with --subscription <id> (ARM answered HTTP 404)" in out
    assert "what to do: pass --subscription <id>" in out


# Issue 32: what needs nothing is checked first; the passphrase; a stack of your own; the version.

PASSPHRASE = "correct horse battery staple"


def test_bad_settings_are_exit_3_before_the_cli_is_looked_for(tmp_path: Path) -> None:
    root = tmp_path / "project"
    root.mkdir()
    (root / "Pulumi.dev.yaml").write_text("config:\n  broadcast:signalrSku: Free_F2\n")
    harness = Harness(tmp_path)
    harness.root = root

    def no_cli() -> str:
        raise AssertionError("the CLI is looked for only once the settings are valid")

    harness.version = no_cli
    code, out = harness.run("dev")
    assert code == 3 and steps(out) == ["settings"]
    assert "broadcast:signalrSku" in out and "what to do: correct Pulumi.dev.yaml" in out


def test_a_self_managed_backend_s_passphrase_is_asked_on_the_terminal_and_never_shown(
    tmp_path: Path,
) -> None:
    """`pulumi login --local`, a new stack (Pulumi.dev.yaml has no encryptionsalt): asked twice."""
    harness = Harness(tmp_path)
    harness.backend_url = "file://~"
    harness.typed = [PASSPHRASE, PASSPHRASE]
    code, out = harness.run("dev", "--yes")
    assert code == 0, out
    assert harness.prompts == [
        "Passphrase for the secrets of stack dev (new: remember it): ",
        "Type it again: ",
    ]
    assert harness.environ == {"PULUMI_CONFIG_PASSPHRASE": PASSPHRASE}  # for the CLI, in memory
    assert PASSPHRASE not in out
    assert "backend file://~: passphrase read from the terminal (not echoed, not stored)" in out
    assert steps(out).index("secrets") < steps(out).index("stack")


def test_two_different_passphrases_are_asked_again(tmp_path: Path) -> None:
    harness = Harness(tmp_path)
    harness.backend_url = "azblob://state"
    harness.typed = [PASSPHRASE, "typo", PASSPHRASE, PASSPHRASE]
    code, out = harness.run("dev", "--yes")
    assert code == 0 and len(harness.prompts) == 4 and "the two did not match" in out
    assert harness.environ["PULUMI_CONFIG_PASSPHRASE"] == PASSPHRASE


def test_an_existing_passphrase_stack_is_asked_once(tmp_path: Path) -> None:
    root = tmp_path / "project"
    root.mkdir()
    text = (ROOT / "Pulumi.dev.yaml").read_text()
    (root / "Pulumi.dev.yaml").write_text("encryptionsalt: v1:c2FsdA==:v1:aXY=:Y3Q=\n" + text)
    harness = Harness(tmp_path, Backend(stacks={"dev"}, root=root))
    harness.root, harness.backend_url, harness.typed = root, "file://~", [PASSPHRASE]
    code, _ = harness.run("dev", "--yes")
    assert code == 0 and harness.prompts == ["Passphrase for the secrets of stack dev: "]


def test_without_a_terminal_it_says_what_to_export_and_stops(tmp_path: Path) -> None:
    harness = Harness(tmp_path)
    harness.backend_url, harness.terminal = "file://~", False
    code, out = harness.run("dev", "--yes")
    assert code == 4 and steps(out)[-1] == "secrets" and harness.backend.calls == []
    assert "stack dev encrypts its secrets with a passphrase, PULUMI_CONFIG_PASSPHRASE is not set" in out
    assert "`export PULUMI_CONFIG_PASSPHRASE=<the stack's passphrase>`" in out


def test_a_set_passphrase_or_pulumi_cloud_asks_nothing(tmp_path: Path) -> None:
    exported = Harness(tmp_path / "a")
    exported.backend_url, exported.terminal = "file://~", False
    exported.environ["PULUMI_CONFIG_PASSPHRASE"] = ""  # Pulumi takes a set variable, even empty
    assert exported.run("dev", "--yes")[0] == 0
    cloud = Harness(tmp_path / "b")
    code, out = cloud.run("dev", "--yes")
    assert code == 0 and cloud.prompts == [] and cloud.environ == {}
    assert "the stack's secrets provider needs no passphrase" in out


def test_a_stack_of_your_own_from_an_environment(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "project"
    root.mkdir()
    shutil.copy(ROOT / "Pulumi.dev.yaml", root / "Pulumi.dev.yaml")
    harness = Harness(tmp_path, Backend(root=root))
    harness.root = root
    code, out = harness.run("alice", "--from", "dev", "--yes")
    assert code == 0, out
    assert "wrote Pulumi.alice.yaml from Pulumi.dev.yaml" in out
    assert harness.backend.calls[:2] == ["select alice", "create alice"]
    import pulumi

    from settings import load_settings, stack_file

    config = stack_file("alice", root)
    assert config["broadcast:instance"] == "alice" and config["broadcast:environment"] == "dev"
    pulumi.runtime.set_all_config(config, [])
    assert (
        load_settings(pulumi.Config("broadcast"), stack="alice").resource_group_name == "rg-bcast-dev-alice"
    )
    again = Harness(tmp_path / "again", Backend(root=root))
    again.root = root
    assert again.run("alice", "--from", "dev")[0] == 2
    assert (
        "Pulumi.alice.yaml exists already: deploy it with `python -m deploy alice`" in capsys.readouterr().err
    )


def test_a_stack_name_that_is_no_instance_needs_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "project"
    root.mkdir()
    shutil.copy(ROOT / "Pulumi.dev.yaml", root / "Pulumi.dev.yaml")
    harness = Harness(tmp_path, Backend(root=root))
    harness.root = root
    assert harness.run("Alice-2", "--from", "dev")[0] == 2
    assert "pass --instance <name>, e.g. --instance alice2" in capsys.readouterr().err
    assert not (root / "Pulumi.Alice-2.yaml").exists()
    assert harness.run("Alice-2", "--from", "nope")[0] == 2
    assert "--from nope: name an environment's stack file (dev)" in capsys.readouterr().err
    code, out = harness.run("Alice-2", "--from", "dev", "--instance", "alice", "--preview-only")
    assert code == 0 and "wrote Pulumi.Alice-2.yaml" in out


def test_the_version_is_printed_first(tmp_path: Path) -> None:
    from settings.version import project_version

    _, out = Harness(tmp_path).run("dev", "--preview-only")
    assert out.splitlines()[0] == f"broadcast {project_version()}: preview only, stack dev"


def test_a_protected_stack_s_destroy_steps_need_no_cli(tmp_path: Path) -> None:
    harness = Harness(tmp_path)

    def no_cli() -> str:
        raise FileNotFoundError(2, "pulumi")

    harness.version = no_cli
    code, out = harness.run("prod", "--destroy")
    assert code == 1 and "pulumi config set protectData false --stack prod" in out


def test_a_wrong_command_line_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as raised:
        main(["dev", "--instance", "x"], tools=None)
    assert raised.value.code == 2
    assert capsys.readouterr().err == (
        "python -m deploy: --instance goes with --from (an existing stack's instance is in its file) "
        "(--help lists the options)\n"
    )
