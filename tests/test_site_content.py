"""What the site serves: every file, its content type and cache policy, and a page that works
under its own Content-Security-Policy."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from artifacts.site_files import ASSET, REVALIDATE, SITE_DIR, content_type, site_files

ROOT = SITE_DIR.parent


def test_the_site_has_its_pages_and_the_vendored_client() -> None:
    files = site_files()
    assert {"index.html", "404.html", "app.js", "styles.css", "favicon.svg", "vendor/signalr.min.js"} <= set(
        files
    )
    assert not any(
        path.startswith(("node_modules/", "tests/")) or path.startswith("package") for path in files
    )


@pytest.mark.parametrize(
    ("path", "expected_type", "expected_cache"),
    [
        ("index.html", "text/html; charset=utf-8", REVALIDATE),
        ("404.html", "text/html; charset=utf-8", REVALIDATE),
        ("app.js", "text/javascript; charset=utf-8", ASSET),
        ("styles.css", "text/css; charset=utf-8", ASSET),
        ("favicon.svg", "image/svg+xml", ASSET),
        ("vendor/signalr.min.js", "text/javascript; charset=utf-8", ASSET),
    ],
)
def test_content_type_and_cache_control(path: str, expected_type: str, expected_cache: str) -> None:
    entry = site_files()[path]
    assert (entry.content_type, entry.cache_control) == (expected_type, expected_cache)


def test_an_unknown_file_type_is_refused_with_its_name() -> None:
    with pytest.raises(ValueError, match=r"site/notes\.docx: no content type for \.docx"):
        content_type("notes.docx")


def test_a_missing_npm_install_is_explained(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("<!doctype html>")
    with pytest.raises(FileNotFoundError, match="run `npm ci` in site/"):
        site_files(tmp_path)


def test_the_page_loads_nothing_from_another_origin() -> None:
    html = (SITE_DIR / "index.html").read_text()
    for reference in re.findall(r'(?:src|href)="([^"]+)"', html):
        assert not re.match(r"(https?:)?//", reference), reference
        if reference.startswith("#"):
            continue  # a place in the page (the skip link)
        assert reference in site_files(), reference
    policy = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', html)
    assert policy is not None
    directives = dict(part.strip().split(" ", 1) for part in policy.group(1).split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == "'self'" and "unsafe" not in policy.group(1)


def test_the_signalr_client_is_pinned_by_the_lock_file() -> None:
    import json

    lock = json.loads((SITE_DIR / "package-lock.json").read_text())
    declared = json.loads((SITE_DIR / "package.json").read_text())["dependencies"]["@microsoft/signalr"]
    assert lock["packages"]["node_modules/@microsoft/signalr"]["version"] == declared


@pytest.mark.parametrize("page", ["index.html", "404.html"])
def test_each_page_describes_itself_and_follows_the_colour_scheme(page: str) -> None:
    html = (SITE_DIR / page).read_text()
    assert re.search(r'<meta name="description" content="[^"]{20,}">', html)
    assert '<meta name="color-scheme" content="light dark">' in html
    assert re.findall(
        r'<meta name="theme-color" content="#[0-9a-f]{6}" media="\(prefers-color-scheme: (\w+)\)">', html
    ) == [
        "light",
        "dark",
    ]
    icon = re.search(r'<link rel="icon" href="/?([^"]+)"', html)
    assert icon is not None and icon.group(1) in site_files()


def test_the_script_never_turns_text_into_markup() -> None:
    script = (SITE_DIR / "app.js").read_text()
    assert '"use strict";' in script
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in script, sink
    # Links are made only from addresses whose scheme is checked.
    assert 'url.protocol === "http:" || url.protocol === "https:"' in script
    assert 'link.rel = "noopener noreferrer"' in script


def test_the_styles_declare_both_colour_schemes_and_respect_reduced_motion() -> None:
    styles = (SITE_DIR / "styles.css").read_text()
    assert "color-scheme: light dark;" in styles
    assert "@media (prefers-color-scheme: dark)" in styles
    assert "@media (prefers-reduced-motion: reduce)" in styles


def test_the_scripts_parse() -> None:
    """A syntax error would leave the page dead in every browser; node (which `make setup` needs for
    npm) parses the script without running it."""
    node = shutil.which("node")
    assert node, "node is needed: the site's setup installs it with npm"
    for script in sorted(SITE_DIR.glob("*.js")):
        result = subprocess.run([node, "--check", str(script)], capture_output=True, text=True, check=False)
        assert result.returncode == 0, f"{script.name}: {result.stderr}"


def ui_strings() -> dict[str, str]:
    """The plain texts of the script's string table (`const T = { ... }`)."""
    script = (SITE_DIR / "app.js").read_text()
    table = re.search(r"\n  const T = \{\n(.*?)\n  \};\n", script, re.S)
    assert table is not None, "app.js has no string table"
    return dict(re.findall(r'^ {4}(\w+):\s*"((?:[^"\\]|\\.)*)",$', table.group(1), re.M))


def test_every_text_of_the_page_comes_from_the_one_string_table() -> None:
    """A translation is the table: each text of index.html names its entry, and says the same."""
    strings = ui_strings()
    html = (SITE_DIR / "index.html").read_text()
    marked = re.findall(r'data-text="(\w+)"[^>]*>([^<]*)<', html)
    assert len(marked) >= 15
    for key, text in marked:
        assert strings.get(key) == text, key
    # Outside the table, the script writes no literal English into the page.
    script = (SITE_DIR / "app.js").read_text()
    body = script.split("\n  };\n", 1)[1]
    assert not re.findall(r'(?:textContent|title|report\([^)]*)\s*=?\s*"[A-Z][a-z]+ ', body)
    # Dates and times are not in the table: they follow the reader's languages (issue 31 item 7).
    assert "new Intl.DateTimeFormat(TIME_LOCALES" in script and "navigator.languages" in script


def test_the_script_is_served_minified_with_a_source_map() -> None:
    files = site_files()
    served, source_map = files["app.js"], files["app.js.map"]
    written = (SITE_DIR / "app.js").read_bytes()
    assert served.source.read_bytes().rstrip().endswith(b"//# sourceMappingURL=app.js.map")
    assert len(served.source.read_bytes()) < 0.6 * len(written)
    assert (source_map.content_type, source_map.cache_control) == ("application/json", ASSET)
    assert site_files()["app.js"].source == served.source  # built once, then reused


def test_a_missing_minifier_is_explained(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("<!doctype html>")
    (tmp_path / "app.js").write_text('"use strict";')
    with pytest.raises(FileNotFoundError, match=r"node_modules/terser/bin/terser is missing: run `npm ci`"):
        site_files(tmp_path)


def test_a_script_the_minifier_refuses_is_named(tmp_path: Path) -> None:
    (tmp_path / "node_modules").mkdir()
    (tmp_path / "node_modules/terser").symlink_to(SITE_DIR / "node_modules/terser")
    (tmp_path / "app.js").write_text("function (")
    refused = r"(?s)site/app\.js: terser could not minify it: Parse error at app\.js:1,9.*Unexpected token"
    with pytest.raises(RuntimeError, match=refused):
        site_files(tmp_path)


def code_point_ranges(text: str) -> list[tuple[int, int]]:
    """(first, last) ranges of a JavaScript character class: `\\uXXXX`, `\\u{X...}`, `a-b`."""
    point = r"\\u(?:\{([0-9a-fA-F]+)\}|([0-9a-fA-F]{4}))"
    ranges = []
    for match in re.finditer(f"{point}(?:-{point})?", text):
        first = int(match.group(1) or match.group(2), 16)
        last = int(match.group(3) or match.group(4), 16) if match.group(3) or match.group(4) else first
        ranges.append((first, last))
    return ranges


def test_the_publisher_refuses_exactly_the_characters_the_api_refuses() -> None:
    """Issue 21 item 9: the site's check and functions/contract.py hold the same list."""
    contract = (ROOT / "functions" / "contract.py").read_text()
    api: list[tuple[int, int]] = []
    for name in ("CONTROL_RANGES", "BIDI_RANGES", "INVISIBLE_RANGES"):
        block = re.search(rf"^{name} = (\([^\n]*\)\)|\(\n.*?\n\))$", contract, re.S | re.M)
        assert block is not None, name
        api += [
            (int(a, 16), int(b, 16))
            for a, b in re.findall(r"\((0x[0-9A-F]+), (0x[0-9A-F]+)\)", block.group(1))
        ]
    script = (SITE_DIR / "app.js").read_text()
    site = re.search(r"const INVISIBLE =\s*/\[(.*?)\]/gu;", script)
    assert site is not None
    assert code_point_ranges(site.group(1)) == api
    assert len(api) >= 20
