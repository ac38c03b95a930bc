"""What the static website serves: every file of `site/`, its content type and cache policy, and
the manifest and `config.json` the deployment uploads.

The deployment and the local mode both read this, so the two serve the same files the same way.
The npm-installed SignalR client ships with the site under `vendor/` (nothing is loaded from a
third-party origin at run time). The page's own script is minified here, with a source map, by the
npm-installed terser: the static website cannot compress, so what ships is what loads.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

SITE_DIR = Path(__file__).resolve().parent.parent / "site"
CONFIG_PATH = "config.json"
"""The generated file that points the page at a stack's API and hub."""
VENDOR_FILES = {
    "vendor/signalr.min.js": "node_modules/@microsoft/signalr/dist/browser/signalr.min.js",
}
_EXCLUDED_NAMES = {"package.json", "package-lock.json", "README.md"}
MINIFIED = ("app.js",)
"""Scripts served minified, each with `<name>.map` beside it (the source map embeds the source)."""
TERSER = "node_modules/terser/bin/terser"
# Minified copies live beside the minifier, one folder per source and terser version, so a copy is
# never stale and parallel runs (test workers, the local mode) never overwrite one being read.
_MINIFY_CACHE = "node_modules/.cache/broadcast-site"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".txt": "text/plain; charset=utf-8",
    ".webmanifest": "application/manifest+json",
    ".map": "application/json",
}
# Documents (and the generated config.json) are revalidated on every load so a deployment shows
# at once; other assets may be reused for an hour, then revalidated.
REVALIDATE = "no-cache"
ASSET = "public, max-age=3600, must-revalidate"


@dataclass(frozen=True)
class SiteFile:
    """One file of the site as served."""

    path: str
    """The URL path (and blob name) relative to the site root, e.g. `app.js`."""
    source: Path
    content_type: str
    cache_control: str


def cache_control(path: str) -> str:
    """The Cache-Control a file is served with."""
    return REVALIDATE if path.endswith((".html", ".json")) else ASSET


def content_type(path: str) -> str:
    """The Content-Type of a site file, or ValueError naming the file."""
    suffix = Path(path).suffix.lower()
    if suffix not in CONTENT_TYPES:
        raise ValueError(
            f"site/{path}: no content type for {suffix or 'a file without extension'}; "
            f"allowed: {', '.join(sorted(CONTENT_TYPES))}"
        )
    return CONTENT_TYPES[suffix]


def site_files(site_dir: Path = SITE_DIR) -> dict[str, SiteFile]:
    """Every file the site serves, by path; the vendored client must have been installed (npm ci)."""
    files: dict[str, SiteFile] = {}
    for source in sorted(site_dir.rglob("*")):
        relative = source.relative_to(site_dir).as_posix()
        if (
            not source.is_file()
            or relative.startswith(("node_modules/", "tests/"))
            or source.name in _EXCLUDED_NAMES
            or any(part.startswith(".") for part in relative.split("/"))
        ):
            continue
        files[relative] = SiteFile(relative, source, content_type(relative), cache_control(relative))
    for path in MINIFIED:
        if path in files:
            script, source_map = minify(site_dir, path)
            files[path] = SiteFile(path, script, content_type(path), cache_control(path))
            map_path = f"{path}.map"
            files[map_path] = SiteFile(map_path, source_map, content_type(map_path), cache_control(map_path))
    for path, installed in VENDOR_FILES.items():
        source = site_dir / installed
        if not source.is_file():
            raise FileNotFoundError(f"{source} is missing: run `npm ci` in site/ (make setup does)")
        files[path] = SiteFile(path, source, content_type(path), cache_control(path))
    return files


def minify(site_dir: Path, path: str) -> tuple[Path, Path]:
    """`site/<path>` minified by terser, and its source map: built once per source and terser version.

    The script ends with `//# sourceMappingURL=<name>.map`, so a browser's developer tools show the
    original (the map embeds it as `sourcesContent`). FileNotFoundError when terser is not installed,
    RuntimeError with terser's message when it refuses the script.
    """
    terser = site_dir / TERSER
    if not terser.is_file():
        raise FileNotFoundError(f"{terser} is missing: run `npm ci` in site/ (make setup does)")
    source = (site_dir / path).read_bytes()
    version = json.loads((terser.parent.parent / "package.json").read_text())["version"]
    digest = hashlib.sha256(source + version.encode()).hexdigest()[:20]
    name = Path(path).name
    folder = site_dir / _MINIFY_CACHE / f"{Path(path).stem}-{digest}"
    script, source_map = folder / name, folder / f"{name}.map"
    if script.is_file() and source_map.is_file():
        return script, source_map
    folder.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(dir=folder.parent))
    try:
        command = [
            "node",
            str(terser.resolve()),
            path,
            "--compress",
            "--mangle",
            "--ecma",
            "2020",
            "--source-map",
            f"url='{name}.map',includeSources",
            "--output",
            str(scratch / name),
        ]
        result = subprocess.run(command, cwd=site_dir, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            # Terser's message and where it points, without its own stack trace.
            lines = result.stderr.strip().splitlines()
            message = "\n".join(line for line in lines if not line.startswith("    at "))
            raise RuntimeError(f"site/{path}: terser could not minify it: {message}")
        with contextlib.suppress(OSError):  # another run may have finished first: as good
            scratch.rename(folder)  # atomic: a reader sees both files or neither
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return script, source_map


def file_manifest(files: Mapping[str, SiteFile], root: Path) -> dict[str, dict[str, str]]:
    """What the site upload plans: per path, the source (relative to the project), hash, headers."""
    return {
        path: {
            "source": entry.source.resolve().relative_to(root.resolve()).as_posix(),
            "sha256": hashlib.sha256(entry.source.read_bytes()).hexdigest(),
            "content_type": entry.content_type,
            "cache_control": entry.cache_control,
        }
        for path, entry in sorted(files.items())
    }


def config_document(api_base_url: str, hub: str) -> str:
    """The site's config.json (stable key order, so an unchanged config is an unchanged blob)."""
    return json.dumps({"apiBaseUrl": api_base_url, "hub": hub}, sort_keys=True)
