#!/usr/bin/env bash
# Installs what the tests and the local mode need: the system packages (when missing), the Python
# virtualenv, and the site's npm packages. `bash scripts/setup.sh system` does the first part only.
#
# Supported systems, and what each gets:
#   Debian 12 or newer (apt)   chromium, unixodbc, libsqliteodbc: everything, `make test` included
#                              (CI runs here, in python:3.11-bookworm).
#   Ubuntu (apt)               unixodbc, libsqliteodbc. Ubuntu ships Chromium as a snap, not as the
#                              Debian package the browser tests launch (/usr/bin/chromium).
#   macOS (Homebrew)           unixodbc, sqliteodbc (registered with unixODBC as "SQLite3", as
#                              Debian's package does). No Chromium: same as Ubuntu.
# Without /usr/bin/chromium, `make local`, `make test-fast` and deploying work; `make test`'s browser
# tests (tests/test_site_browser.py) need Debian's Chromium: run them in a python:3.11-bookworm
# container, as CI does. Any other system: the script names what to install and stops.
set -euo pipefail
cd "$(dirname "$0")/.."

os_release=${SETUP_OS_RELEASE:-/etc/os-release}
step=${1:-all}

fail() {
  echo "setup: $*" >&2
  exit 1
}

as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null; then
    sudo "$@"
  else
    fail "run as root, or install sudo, to run: $*"
  fi
}

no_chromium_note() {
  echo "setup: note: no Debian Chromium at /usr/bin/chromium here: make local, make test-fast and deploying"
  echo "  work; make test's browser tests need it (run them in a python:3.11-bookworm container, as CI does)."
}

apt_packages() {
  local id=""
  [ -r "$os_release" ] && id=$(. "$os_release" && echo "${ID:-}")
  local wanted=(unixodbc libsqliteodbc)
  if [ "$id" = "debian" ]; then
    wanted=(chromium "${wanted[@]}")
  fi
  local missing=()
  for package in "${wanted[@]}"; do
    dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
  fi
  [ "$id" = "debian" ] || no_chromium_note
}

brew_packages() {
  local missing=()
  for formula in unixodbc sqliteodbc; do
    brew list --formula "$formula" >/dev/null 2>&1 || missing+=("$formula")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    brew install "${missing[@]}"
  fi
  # Homebrew installs the driver without registering it; the tests connect with Driver=SQLite3.
  if ! odbcinst -q -d -n SQLite3 >/dev/null 2>&1; then
    local template
    template=$(mktemp)
    printf '[SQLite3]\nDescription=SQLite3 ODBC Driver\nDriver=%s\nSetup=%s\n' \
      "$(brew --prefix sqliteodbc)/lib/libsqlite3odbc.dylib" \
      "$(brew --prefix sqliteodbc)/lib/libsqlite3odbc.dylib" >"$template"
    odbcinst -i -d -f "$template"
    rm -f "$template"
  fi
  no_chromium_note
}

system_packages() {
  case "$(uname -s)" in
    Linux)
      command -v apt-get >/dev/null && command -v dpkg >/dev/null ||
        fail "this Linux has no apt-get: supported are Debian 12+ and Ubuntu (apt) and macOS (Homebrew). Install unixODBC and the SQLite ODBC driver (registered as SQLite3) yourself, then run \`bash scripts/setup.sh python\`"
      apt_packages
      ;;
    Darwin)
      command -v brew >/dev/null ||
        fail "macOS needs Homebrew (https://brew.sh) for unixodbc and sqliteodbc: install it, then run make setup again"
      brew_packages
      ;;
    *)
      fail "$(uname -s) is not supported: Debian 12+ and Ubuntu (apt) and macOS (Homebrew) are"
      ;;
  esac
}

check_tools() {
  local python=${PYTHON:-python3}
  command -v "$python" >/dev/null || fail "no $python: install Python 3.11 or newer (or set PYTHON=python3.11)"
  "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
    fail "$("$python" --version 2>&1) is too old: install Python 3.11 or newer (or set PYTHON=python3.11)"
  command -v node >/dev/null && command -v npm >/dev/null || fail "no node/npm: install Node.js 20 or newer"
  node -e 'process.exit(Number(process.versions.node.split(".")[0]) < 20 ? 1 : 0)' ||
    fail "Node.js $(node --version) is too old: install Node.js 20 or newer"
}

python_and_site() {
  local python=${PYTHON:-python3}
  if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
  fi
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -r requirements-dev.txt
  # The function package's dependencies as Linux wheels for the Functions host, kept locally so the
  # tests build the package without reaching PyPI.
  for version in 3.11 3.12; do
    .venv/bin/python -m pip download -q --only-binary=:all: --platform manylinux2014_x86_64 --implementation cp \
      --python-version "$version" -r functions/requirements.txt -d build/wheels
  done

  # Deploying (not testing) needs Microsoft's ODBC driver: the schema migrations connect with it.
  if ! odbcinst -q -d -n "ODBC Driver 18 for SQL Server" >/dev/null 2>&1; then
    echo "setup: note: ODBC Driver 18 for SQL Server is not installed. The tests and the local mode do not"
    echo "  need it; \`pulumi up\` does (docs/deploy.md, Prerequisites): on Debian/Ubuntu, after adding Microsoft's"
    echo "  package repository, \`sudo ACCEPT_EULA=Y apt-get install -y msodbcsql18\`; on macOS,"
    echo "  \`HOMEBREW_ACCEPT_EULA=Y brew install msodbcsql18\` (tap microsoft/mssql-release)."
  fi

  if [ -f site/package-lock.json ]; then
    (cd site && npm ci --no-audit --no-fund --loglevel=error)
  fi
}

case "$step" in
  all) check_tools; system_packages; python_and_site ;;
  system) system_packages ;;
  python) check_tools; python_and_site ;;
  *) fail "unknown step '$step': all (default), system or python" ;;
esac
echo "setup: done"
