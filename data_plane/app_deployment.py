"""The function package built and published inside the code deployment script
(`components.code_deployment`), with nothing but the standard library and the Azure CLI of the
container (Azure Linux 3.0, python3 3.12).

- `build APP_DIR ZIP`: the zip the Functions host runs: the sources and `.python_packages` (installed
  by the script with pip for the host's platform and Python), sorted, fixed times and modes, no
  bytecode, so the same inputs give the same bytes.
- `onedeploy ZIP SCM_HOST`: Kudu's OneDeploy, the only deployment Flex Consumption supports,
  `POST https://<scm>/api/publish?RemoteBuild=false` with the identity's Entra token, then the
  deployment followed until it ends. Not `az functionapp deployment source config-zip`: on Flex it
  forces a remote build for Python (`build_remote = build_remote or runtime == 'python'`) and then
  reads the master key and polls the host's status (Azure/azure-cli `custom.py`,
  `enable_zip_deploy_flex`, `check_flex_app_after_deployment`), which needs more than publishing.

Kudu's answers, as `docs/sources/flex-consumption.md` §2 records them: 202 with the deployment id as a
JSON string (or a Location header); `/api/deployments/<id>` with `status` -1 cancelled, 3 failed,
4 success, 5 conflict, 6 partial success (terminal), `complete: true` when done; 401/403 while the
caller's role propagates; a failed deployment whose text is Storage's 403 while the app's own role on
its deployment storage propagates. Both refusals are waited out for ROLE_WAIT_SECONDS.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from pathlib import Path

SUCCESS = 4
ENDINGS = {-1: "was cancelled", 3: "failed", 5: "met another deployment", 6: "was only partly successful"}
ROLE_WAIT_SECONDS = 600
RETRY_SECONDS = 15
FOLLOW_SECONDS = 1200
_STORAGE_REFUSAL = ("403", "Forbidden", "AuthorizationPermissionMismatch")
_SKIPPED = ("__pycache__",)
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)

Transport = Callable[[str, str, bytes | None, dict[str, str]], tuple[int, dict[str, str], bytes]]


class RolePendingError(RuntimeError):
    """Refused for want of a role that may still be propagating."""


def build(app_dir: Path, destination: Path) -> int:
    """Write the package zip; returns its number of entries."""
    entries = sorted(
        path
        for path in app_dir.rglob("*")
        if path.is_file() and not any(part in _SKIPPED for part in path.parts) and path.suffix != ".pyc"
    )
    with zipfile.ZipFile(destination, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for path in entries:
            info = zipfile.ZipInfo(path.relative_to(app_dir).as_posix(), date_time=_FIXED_TIME)
            info.compress_type, info.create_system = zipfile.ZIP_DEFLATED, 3
            info.external_attr = 0o100644 << 16
            archive.writestr(info, path.read_bytes())
    return len(entries)


def cli_token() -> str:
    """An ARM token for the script's identity (Kudu accepts ARM-audience tokens)."""
    result = subprocess.run(
        ["az", "account", "get-access-token", "--query", "accessToken", "--output", "tsv"],
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip()


def urllib_transport(
    method: str, url: str, body: bytes | None, headers: dict[str, str]
) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, data=body, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=300) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers or {}), error.read()


class OneDeploy:
    """Publish a zip to Kudu and follow it; every seam (transport, token, clock) replaceable."""

    def __init__(
        self,
        transport: Transport = urllib_transport,
        token: Callable[[], str] = cli_token,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._transport, self._token, self._sleep, self._clock = transport, token, sleep, clock

    def _send(self, method: str, url: str, body: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
        headers = {"Authorization": f"Bearer {self._token()}"}
        if body is not None:
            headers["Content-Type"] = "application/zip"
        return self._transport(method, url, body, headers)

    def deploy(self, scm_host: str, data: bytes) -> str:
        """The deployment's id once it succeeded; RuntimeError with Kudu's message otherwise."""
        deadline = self._clock() + ROLE_WAIT_SECONDS
        while True:
            try:
                return self._follow(scm_host, self._publish(scm_host, data))
            except RolePendingError as refusal:
                if self._clock() + RETRY_SECONDS > deadline:
                    raise RuntimeError(f"{refusal} (still refused after {ROLE_WAIT_SECONDS} s)") from None
                print(f"waiting for a role assignment: {refusal}", file=sys.stderr)
                self._sleep(RETRY_SECONDS)

    def _publish(self, scm_host: str, data: bytes) -> str:
        status, headers, body = self._send("POST", f"https://{scm_host}/api/publish?RemoteBuild=false", data)
        text = body.decode("utf-8", "replace")[:500]
        if status in (401, 403, 409):
            raise RolePendingError(f"OneDeploy to {scm_host} answered HTTP {status}: {text}")
        if status not in (200, 202):
            raise RuntimeError(f"OneDeploy to {scm_host} was refused with HTTP {status}: {text}")
        try:
            deployment_id = json.loads(body) if body.strip() else None
        except ValueError:
            deployment_id = None
        if isinstance(deployment_id, str) and deployment_id:
            return f"https://{scm_host}/api/deployments/{deployment_id}"
        location = next((v for k, v in headers.items() if k.lower() == "location"), "/api/deployments/latest")
        return location if location.startswith("https://") else f"https://{scm_host}{location}"

    def _follow(self, scm_host: str, status_url: str) -> str:
        deadline = self._clock() + FOLLOW_SECONDS
        while True:
            code, _, text = self._send("GET", status_url)
            if code == 200:
                deployment = json.loads(text or b"{}")
                state = deployment.get("status")
                if state == SUCCESS:
                    return str(deployment.get("id", "latest"))
                if state in ENDINGS or deployment.get("complete") is True:
                    ending = ENDINGS.get(state, f"ended with status {state}")
                    message = f"the deployment to {scm_host} {ending}: {deployment.get('status_text') or ''}"
                    if state == 3 and any(w in str(deployment.get("status_text")) for w in _STORAGE_REFUSAL):
                        raise RolePendingError(message)
                    raise RuntimeError(f"{message} {deployment.get('log_url') or ''}".strip())
            elif code not in (202, 404):  # 404: a new deployment is not visible yet
                raise RuntimeError(f"reading {status_url} failed with HTTP {code}")
            if self._clock() > deadline:
                raise RuntimeError(f"the deployment to {scm_host} did not end within {FOLLOW_SECONDS} s")
            self._sleep(5)


def main(argv: list[str]) -> int:
    command, *rest = argv
    if command == "build":
        count = build(Path(rest[0]), Path(rest[1]))
        print(f"package: {count} files, {os.path.getsize(rest[1])} bytes")
        return 0
    if command == "onedeploy":
        deployment = OneDeploy().deploy(rest[1], Path(rest[0]).read_bytes())
        print(f"deployment {deployment} succeeded")
        return 0
    print(
        f"usage: app_deployment.py build APP_DIR ZIP | onedeploy ZIP SCM_HOST (got {command!r})",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
