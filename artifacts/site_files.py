"""What the static website serves: every file of `site/`, its content type and cache policy, and
the manifest and `config.json` the deployment uploads.

The deployment and the local mode both read this, so the two serve the same files the same way.
The npm-installed SignalR client ships with the site under `vendor/` (nothing is loaded from a
third-party origin at run time).
"""

from __future__ import annotations

import hashlib
import json
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
    for path, installed in VENDOR_FILES.items():
        source = site_dir / installed
        if not source.is_file():
            raise FileNotFoundError(f"{source} is missing: run `npm ci` in site/ (make setup does)")
        files[path] = SiteFile(path, source, content_type(path), cache_control(path))
    return files


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
