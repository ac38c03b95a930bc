"""The commands the README gives, run as a user would: the local mode's CLI and the offline
policy check."""

from __future__ import annotations

import json
import os
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


def test_offline_policy_check_names_an_unknown_stack(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        preview_main(["staging"])
    assert "no Pulumi.staging.yaml" in capsys.readouterr().err
