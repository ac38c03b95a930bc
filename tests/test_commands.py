"""The commands the README gives, run as a user would: the local mode's CLI and the offline
policy check."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from mocks import ProgramRun
from preview.__main__ import main as preview_main

ROOT = Path(__file__).resolve().parent.parent


def test_local_mode_starts_prints_how_to_use_it_serves_and_stops_on_ctrl_c() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "local", "--port", "0", "--publish-key", "a-long-test-key"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        banner = process.stdout.readline()
        assert banner.startswith("broadcast local mode on http://127.0.0.1:")
        url = banner.split(" on ", 1)[1].strip().rstrip("/")
        lines = [process.stdout.readline() for _ in range(5)]
        assert any("publish key: a-long-test-key" in line for line in lines)
        with urllib.request.urlopen(url + "/api/health", timeout=10) as response:
            assert json.loads(response.read()) == {"status": "ok", "database": True}
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=15) == 0
        assert "stopping" in process.stdout.read()
    finally:
        if process.poll() is None:
            process.kill()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--port", "70000"], "--port 70000: allowed 0-65535"),
        (["--publish-key", "short"], "--publish-key: use at least 8 characters"),
    ],
)
def test_local_mode_refuses_bad_options(arguments: list[str], message: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "local", *arguments],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2 and message in result.stderr


def test_the_benchmarks_start_the_local_mode_with_any_random_key() -> None:
    """A URL-safe random key may start with "-": the benchmarks' command must still hand it to
    `--publish-key` (as `--publish-key -x...` it was argparse's "expected one argument", exit 2)."""
    from benchmarks.broadcast import local_command
    from local.__main__ import parse_args

    key = "-Xq3vB_0a9Zk7LmN2pQr4s"
    command = local_command(7071, key)
    assert command[:3] == [sys.executable, "-m", "local"]
    arguments = parse_args([*command[3:], "--sql-polling-ms", "0"])
    assert (arguments.publish_key, arguments.port) == (key, 7071)


def test_offline_policy_check_passes_each_stack(
    capsys: pytest.CaptureFixture[str], dev: ProgramRun, prod: ProgramRun, private: ProgramRun
) -> None:
    for stack, run in (("dev", dev), ("prod", prod), ("test", private)):
        assert preview_main([stack, "--policy-config", str(ROOT / f"policies/config.{stack}.json")]) == 0
        out = capsys.readouterr().out
        declared = sum(r.type.startswith("azure-native:") for r in run.resources)
        assert f"stack {stack}: {declared} Azure resources checked" in out
        assert "0 mandatory, 0 advisory violation(s)" in out


def test_offline_policy_check_fails_on_a_mandatory_violation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "strict.json"
    config.write_text(json.dumps({"allowed-locations": {"allowedLocations": ["swedencentral"]}}))
    assert preview_main(["dev", "--policy-config", str(config)]) == 1
    out = capsys.readouterr().out
    assert "[mandatory] allowed-locations: Location 'westeurope' is not allowed" in out


def test_offline_policy_check_judges_with_the_config_the_deploy_uses(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 32: `python -m preview dev` ran with an empty config while `make deploy` passed
    policies/config.<environment>.json; both now take the environment's file (and every environment
    has one)."""
    from preview.config_file import environment_config
    from settings import ENVIRONMENTS

    assert all(environment_config(environment) is not None for environment in ENVIRONMENTS)
    (tmp_path / "policies").mkdir()
    shutil.copy(ROOT / "Pulumi.dev.yaml", tmp_path / "Pulumi.dev.yaml")
    strict = {"allowed-locations": {"allowedLocations": ["swedencentral"]}}
    (tmp_path / "policies" / "config.dev.json").write_text(json.dumps(strict))
    assert preview_main(["dev"], root=tmp_path) == 1
    out = capsys.readouterr().out
    assert "checked by the policy pack with policies/config.dev.json" in out
    assert "[mandatory] allowed-locations: Location 'westeurope' is not allowed" in out


def test_offline_policy_check_names_an_unknown_stack(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        preview_main(["staging"])
    assert "no Pulumi.staging.yaml" in capsys.readouterr().err


def write(root: Path, name: str, text: str) -> Path:
    (root / name).write_text(text)
    return root / name


@pytest.mark.parametrize(
    ("stack_text", "message"),
    [
        ("config:\n  broadcast:sqlSku: Nope\n", "broadcast:sqlSku = 'Nope': allowed:"),
        ('config: "x"\n', "Pulumi.bad.yaml: `config` must be a mapping"),
        ("config:\n  broadcast:sqlSku: [\n", "Pulumi.bad.yaml is not valid YAML (line 3, column 1)"),
        ("- a list\n", "Pulumi.bad.yaml: `config` must be a mapping"),
    ],
)
def test_preview_names_a_bad_stack_file_or_setting_and_exits_3(
    tmp_path: Path, stack_text: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 21: an invalid setting was a 46-line traceback, with the exit code of a violation (1)."""
    write(tmp_path, "Pulumi.bad.yaml", stack_text)
    assert preview_main(["bad"], root=tmp_path) == 3
    captured = capsys.readouterr()
    assert captured.out == "" and message in captured.err and "Traceback" not in captured.err


@pytest.mark.parametrize(
    ("config_text", "message"),
    [
        (None, "cannot read it (No such file or directory)"),
        ("{", "not valid JSON"),
        ("[]", "must be a JSON object of policy names"),
        ('{"allowed-locations": "sometimes"}', "policy 'allowed-locations' needs an enforcement level"),
        ('{"allowed-locations": {"enforcementLevel": 3}}', "needs an enforcement level"),
    ],
)
def test_preview_refuses_a_missing_or_invalid_policy_config_with_exit_2(
    tmp_path: Path, config_text: str | None, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "policy.json"
    if config_text is not None:
        config.write_text(config_text)
    with pytest.raises(SystemExit) as exited:
        preview_main(["dev", "--policy-config", str(config)])
    error = capsys.readouterr().err.splitlines()
    assert exited.value.code == 2 and message in error[-1]


def test_preflight_without_an_azure_sign_in_says_az_login_and_exits_4(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 21: 43 lines of DefaultAzureCredential's attempts, and no hint."""
    from azure.core.exceptions import ClientAuthenticationError

    import preflight.__main__ as preflight_command

    def not_signed_in(scope: str = "") -> str:
        raise ClientAuthenticationError("DefaultAzureCredential failed to retrieve a token")

    monkeypatch.setattr(preflight_command, "entra_token", not_signed_in)
    assert preflight_command.main(["dev", "--subscription", "00000000-0000-0000-0000-000000000000"]) == 4
    error = capsys.readouterr().err.splitlines()
    assert len(error) == 1 and "run `az login`" in error[0]


@pytest.mark.parametrize("verbose", [False, True])
def test_the_azure_sdk_s_log_shows_only_under_verbose(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], verbose: bool
) -> None:
    """Issue 32: 14 lines of DefaultAzureCredential's warnings (its logger, at WARNING, printed by
    Python's last-resort handler) came before the one-line hint."""
    import logging

    from azure.core.exceptions import ClientAuthenticationError

    import preflight.__main__ as preflight_command

    def not_signed_in(scope: str = "") -> str:
        logging.getLogger("azure.identity._credentials.chained").warning(
            "DefaultAzureCredential failed to retrieve a token from the included credentials.\n"
            "Attempted credentials:\n\tEnvironmentCredential: unavailable."
        )
        raise ClientAuthenticationError("DefaultAzureCredential failed to retrieve a token")

    monkeypatch.setattr(preflight_command, "entra_token", not_signed_in)
    arguments = ["dev", "--subscription", "00000000-0000-0000-0000-000000000000"]
    assert preflight_command.main([*arguments, *(["--verbose"] if verbose else [])]) == 4
    error = capsys.readouterr().err.splitlines()
    assert "run `az login`" in error[-1]
    if verbose:
        assert error[0] == (
            "azure.identity._credentials.chained: DefaultAzureCredential failed to retrieve a token "
            "from the included credentials."
        )
    else:
        assert len(error) == 1
    preflight_command.sdk_logs.configure(False)


def test_preflight_asks_for_a_subscription_when_the_sign_in_sees_several(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A usage error (2), not the exit code of a missing prerequisite (1)."""
    import preflight.__main__ as preflight_command

    for name in ("ARM_SUBSCRIPTION_ID", "AZURE_SUBSCRIPTION_ID"):
        monkeypatch.delenv(name, raising=False)

    def two_subscriptions(url: str) -> tuple[int, bytes]:
        return 200, json.dumps({"value": [{"subscriptionId": "a"}, {"subscriptionId": "b"}]}).encode()

    assert preflight_command.main(["dev"], arm_get=two_subscriptions, drivers=[]) == 2
    error = capsys.readouterr().err.splitlines()
    assert error == [
        "python -m preflight: say which subscription with --subscription <id> "
        "(the sign-in sees 2 subscriptions)"
    ]
