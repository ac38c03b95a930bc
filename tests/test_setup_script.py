"""`scripts/setup.sh system` on each system it claims (issue 32: macOS was promised, the script only
knew apt-get), run against stand-ins for uname, apt-get, dpkg, Homebrew and unixODBC's odbcinst that
record what they were asked. What the stand-ins answer is what the real tools answer: `dpkg -s` and
`brew list --formula` exit non-zero for a package that is not installed, `odbcinst -q -d -n NAME`
for a driver that is not registered (unixODBC's odbcinst manual)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from mocks import ROOT

SCRIPT = ROOT / "scripts" / "setup.sh"
# The real tools the script needs besides the stand-ins (nothing else from the machine's PATH).
REAL_TOOLS = ("bash", "env", "mktemp", "rm", "cat", "dirname", "id")
STUBS = {
    "uname": 'echo "$FAKE_UNAME"',
    "dpkg": 'echo "dpkg $*" >>"$LOG"; exit 1',
    "apt-get": 'echo "apt-get $*" >>"$LOG"',
    "brew": """echo "brew $*" >>"$LOG"
case "$1" in
  list) exit 1 ;;
  --prefix) echo "/opt/homebrew/opt/$2" ;;
esac""",
    "odbcinst": """echo "odbcinst $*" >>"$LOG"
case "$1" in
  -q) exit 1 ;;
  -i) cat "$4" >>"$LOG" ;;
esac""",
}


def run_setup(tmp_path: Path, uname: str, tools: tuple[str, ...], os_id: str = "") -> tuple[int, str, str]:
    """The script's system step on a machine with these stand-ins; (exit code, output, log)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in REAL_TOOLS:
        (bin_dir / name).symlink_to(shutil.which(name) or f"/bin/{name}")
    for name in tools:
        (bin_dir / name).write_text(f"#!{shutil.which('bash')}\n{STUBS[name]}\n")
        (bin_dir / name).chmod(0o755)
    (tmp_path / "os-release").write_text(f"ID={os_id}\n")
    log = tmp_path / "log"
    log.touch()
    environment = {
        "PATH": str(bin_dir),
        "FAKE_UNAME": uname,
        "LOG": str(log),
        "SETUP_OS_RELEASE": str(tmp_path / "os-release"),
    }
    result = subprocess.run(
        [str(bin_dir / "bash"), str(SCRIPT), "system"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return result.returncode, result.stdout + result.stderr, log.read_text()


def test_debian_gets_chromium_and_the_odbc_packages(tmp_path: Path) -> None:
    code, out, log = run_setup(tmp_path, "Linux", ("uname", "dpkg", "apt-get"), os_id="debian")
    assert code == 0, out
    assert "apt-get install -y -q --no-install-recommends chromium unixodbc libsqliteodbc" in log
    assert "no Debian Chromium" not in out


def test_ubuntu_gets_the_odbc_packages_and_says_what_chromium_is_needed_for(tmp_path: Path) -> None:
    code, out, log = run_setup(tmp_path, "Linux", ("uname", "dpkg", "apt-get"), os_id="ubuntu")
    assert code == 0, out
    assert "apt-get install -y -q --no-install-recommends unixodbc libsqliteodbc" in log
    assert "make test's browser tests need it" in out


def test_macos_installs_with_homebrew_and_registers_the_sqlite_driver(tmp_path: Path) -> None:
    code, out, log = run_setup(tmp_path, "Darwin", ("uname", "brew", "odbcinst"))
    assert code == 0, out
    assert "brew install unixodbc sqliteodbc" in log and "apt-get" not in log and "sudo" not in log
    assert "[SQLite3]\nDescription=SQLite3 ODBC Driver\n" in log
    assert "Driver=/opt/homebrew/opt/sqliteodbc/lib/libsqlite3odbc.dylib" in log
    assert "make test's browser tests need it" in out


@pytest.mark.parametrize(
    ("uname", "tools", "message"),
    [
        ("Darwin", ("uname",), "macOS needs Homebrew (https://brew.sh)"),
        ("Linux", ("uname",), "this Linux has no apt-get: supported are Debian 12+ and Ubuntu (apt)"),
        ("FreeBSD", ("uname",), "FreeBSD is not supported: Debian 12+ and Ubuntu (apt) and macOS"),
    ],
)
def test_an_unsupported_system_is_named_with_what_is_supported(
    tmp_path: Path, uname: str, tools: tuple[str, ...], message: str
) -> None:
    code, out, log = run_setup(tmp_path, uname, tools)
    assert code == 1 and message in out and log == ""
    assert out.count("\n") == 1  # one line
