#!/usr/bin/env bash
# Installs everything the tests and the local mode need on a fresh Debian machine:
# system packages (when missing), the Python virtualenv, and the site's npm packages.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_packages=(chromium unixodbc libsqliteodbc)
missing=()
for package in "${apt_packages[@]}"; do
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if ! command -v sudo >/dev/null; then
      echo "setup: missing system packages: ${missing[*]} (install them as root: apt-get install -y ${missing[*]})" >&2
      exit 1
    fi
    sudo="sudo"
  fi
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

python=${PYTHON:-python3}
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
echo "setup: done"
