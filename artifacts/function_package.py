"""The function package: `functions/` plus its Linux dependencies, as one deterministic zip.

Python Functions deployed from a package do not install requirements on the host: they ship inside
the zip under `.python_packages/lib/site-packages`, built for the host's platform (Linux x86-64,
manylinux2014) and Python version. The same sources give byte-identical zips (sorted entries,
fixed timestamps and permissions, no bytecode).

The package's identity is the hash of what it is built from (sources, pinned requirements, platform,
Python): `plan_package` computes it from the files alone, without pip or any network, so evaluating
the Pulumi program (a preview, a unit test under mocks) never installs anything. The zip itself is
built by `package_bytes` when it is actually deployed, during `pulumi up`, and cached by that hash;
pip reads the package index, or only the wheelhouse named by BROADCAST_WHEELHOUSE.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

FUNCTIONS_DIR = Path(__file__).resolve().parent.parent / "functions"
CACHE_DIR = Path(__file__).resolve().parent.parent / "build" / "packages"
SITE_PACKAGES = ".python_packages/lib/site-packages"
PLATFORM = "manylinux2014_x86_64"
# Never shipped: caches, tests, local-only settings, editor and VCS files.
_EXCLUDED_DIRS = {
    "__pycache__",
    ".venv",
    "venv",
    ".pytest_cache",
    ".mypy_cache",
    ".ruff_cache",
    "tests",
    ".git",
    ".python_packages",
    ".vscode",
}
_EXCLUDED_FILES = {"local.settings.json", ".funcignore", ".gitignore"}
_EXCLUDED_SUFFIXES = (".pyc", ".pyo")
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)

Installer = Callable[[Path, Path, str], None]
"""(requirements file, target directory, python version) -> installs the dependencies there."""
WHEELHOUSE_VARIABLE = "BROADCAST_WHEELHOUSE"
"""A directory of wheels: when set, pip installs from it alone (`--no-index`)."""


@dataclass(frozen=True)
class FunctionPackage:
    """The package a stack deploys, as the program plans it: known without building it."""

    path: Path
    """Where the built zip is cached (it may not exist yet)."""
    sha256: str
    """The hash of the package's inputs (`inputs_hash`): a new value means new code to deploy."""
    python_version: str
    """The Functions host's Python version the dependencies are installed for."""


@dataclass(frozen=True)
class BuiltPackage:
    """A built package."""

    path: Path
    sha256: str
    """Hash of the zip's bytes."""
    size: int
    cached: bool
    """True when the zip came from the cache instead of a build."""


def source_files(functions_dir: Path = FUNCTIONS_DIR) -> list[Path]:
    """The app's own files that go into the package, sorted."""
    files = []
    for path in sorted(functions_dir.rglob("*")):
        relative = path.relative_to(functions_dir)
        if any(part in _EXCLUDED_DIRS for part in relative.parts[:-1]) or relative.parts[0] in _EXCLUDED_DIRS:
            continue
        if path.is_file() and path.name not in _EXCLUDED_FILES and not path.name.endswith(_EXCLUDED_SUFFIXES):
            files.append(path)
    return files


def package_sources(functions_dir: Path = FUNCTIONS_DIR) -> dict[str, bytes]:
    """The app's own files by their path in the package: what the code deployment script ships."""
    return {
        path.relative_to(functions_dir).as_posix(): path.read_bytes() for path in source_files(functions_dir)
    }


def inputs_hash(functions_dir: Path, python_version: str, platform: str = PLATFORM) -> str:
    """A hash of everything the package is built from: sources, requirements, platform, Python."""
    digest = hashlib.sha256(f"{platform}|{python_version}|".encode())
    for path in source_files(functions_dir):
        digest.update(path.relative_to(functions_dir).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def _cache_path(cache_dir: Path, key: str) -> Path:
    return cache_dir / f"functions-{key[:32]}.zip"


def plan_package(
    python_version: str, functions_dir: Path = FUNCTIONS_DIR, cache_dir: Path = CACHE_DIR
) -> FunctionPackage:
    """The package for `python_version`, identified by its inputs' hash: reads the sources, runs
    nothing, reaches no network."""
    for required in ("function_app.py", "host.json", "requirements.txt"):
        if not (functions_dir / required).is_file():
            raise FileNotFoundError(f"{functions_dir / required} is missing: the Functions host needs it")
    key = inputs_hash(functions_dir, python_version)
    return FunctionPackage(_cache_path(cache_dir, key), key, python_version)


def package_bytes(
    path: str | Path,
    sha256: str,
    python_version: str,
    functions_dir: Path = FUNCTIONS_DIR,
    installer: Installer | None = None,
) -> bytes:
    """The zip of a planned package, built now if it is not cached (deploy time only).

    Refuses when the sources no longer hash to what the plan recorded: the preview showed other code."""
    cache_dir = Path(path).parent
    planned = plan_package(python_version, functions_dir, cache_dir)
    if planned.sha256 != sha256:
        raise RuntimeError(
            f"{functions_dir} changed after `pulumi preview` (package {sha256[:12]} planned, "
            f"{planned.sha256[:12]} now); run `pulumi up` again"
        )
    if installer is None:
        wheelhouse = os.environ.get(WHEELHOUSE_VARIABLE)
        installer = pip_installer(Path(wheelhouse) if wheelhouse else None)
    return build_package(python_version, functions_dir, cache_dir, installer).path.read_bytes()


def pip_installer(find_links: Path | None = None) -> Installer:
    """Install for the Functions host with pip: Linux wheels only, for its Python version."""

    def install(requirements: Path, target: Path, python_version: str) -> None:
        command = [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--target",
            str(target),
            "--platform",
            PLATFORM,
            "--implementation",
            "cp",
            "--python-version",
            python_version,
            "--only-binary=:all:",
            "--no-compile",
            "-r",
            str(requirements),
        ]
        if find_links is not None:
            command += ["--no-index", "--find-links", str(find_links)]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(
                f"installing {requirements} for Python {python_version} on {PLATFORM} failed:\n"
                f"{result.stderr.strip() or result.stdout.strip()}"
            )

    return install


def _write_zip(destination: Path, entries: Iterable[tuple[str, Path]]) -> None:
    with zipfile.ZipFile(destination, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name, source in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=_FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = (0o100644 & 0xFFFF) << 16
            info.create_system = 3  # Unix, so the permissions above are read as such
            archive.writestr(info, source.read_bytes(), compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)


def build_package(
    python_version: str,
    functions_dir: Path = FUNCTIONS_DIR,
    cache_dir: Path = CACHE_DIR,
    installer: Installer | None = None,
) -> BuiltPackage:
    """Build (or take from the cache) the package for `python_version`."""
    cached = plan_package(python_version, functions_dir, cache_dir).path
    if cached.is_file():
        data = cached.read_bytes()
        return BuiltPackage(cached, hashlib.sha256(data).hexdigest(), len(data), cached=True)
    install = installer or pip_installer()
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="functions-package-") as scratch:
        target = Path(scratch) / SITE_PACKAGES
        target.mkdir(parents=True)
        install(functions_dir / "requirements.txt", target, python_version)
        entries = [(path.relative_to(functions_dir).as_posix(), path) for path in source_files(functions_dir)]
        for path in sorted(target.rglob("*")):
            relative = path.relative_to(scratch)
            if (
                path.is_file()
                and "__pycache__" not in relative.parts
                and not path.name.endswith(_EXCLUDED_SUFFIXES)
            ):
                entries.append((relative.as_posix(), path))
        partial = cached.with_suffix(".zip.partial")
        _write_zip(partial, entries)
        os.replace(partial, cached)
    data = cached.read_bytes()
    return BuiltPackage(cached, hashlib.sha256(data).hexdigest(), len(data), cached=False)


def clear_cache(cache_dir: Path = CACHE_DIR) -> None:
    """Forget every built package."""
    shutil.rmtree(cache_dir, ignore_errors=True)
