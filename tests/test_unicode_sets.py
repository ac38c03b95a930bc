"""Issue 30, item 9: the invisible-character filter is Unicode's own set. The derivation
(artifacts/unicode_sets.py) against ICU's Default_Ignorable_Code_Point, and the three filters that
use it (the contract, the local database's check, the site's pattern) against the derivation, over
every code point."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import unicodedata

import pytest

from artifacts import unicode_sets
from functions.contract import author_problem, visible
from local.database import COLUMN_CHECKS

SURROGATES = range(0xD800, 0xE000)


def node(script: str) -> object:
    """What a Node.js script prints as JSON (Node carries ICU's Unicode data)."""
    executable = shutil.which("node")
    assert executable, "node is required (make setup installs it for the site)"
    result = subprocess.run(
        [executable, "-e", script], capture_output=True, text=True, timeout=120, check=True
    )
    return json.loads(result.stdout)


def matching_code_points(pattern: str) -> set[int]:
    """Every code point a JavaScript pattern matches, as Node evaluates it."""
    script = (
        f"const re = {pattern}; const out = [];"
        "for (let c = 0; c < 0x110000; c++) { if (c >= 0xd800 && c <= 0xdfff) continue;"
        " if (re.test(String.fromCodePoint(c))) out.push(c); } console.log(JSON.stringify(out));"
    )
    found = node(script)
    assert isinstance(found, list)
    return set(found)


def test_the_derivation_is_icus_default_ignorable_code_point() -> None:
    """UAX #44's derivation from unicodedata and PropList.txt's lists gives the property itself, as
    ICU (Node's `\\p{Default_Ignorable_Code_Point}`) holds it."""
    assert unicode_sets.default_ignorable() == matching_code_points(r"/\p{Default_Ignorable_Code_Point}/u")


def test_the_generated_parts_of_the_contract_and_the_site_are_current() -> None:
    assert unicodedata.unidata_version == "14.0.0", "a new UCD: run python -m artifacts.unicode_sets --write"
    assert unicode_sets.main([]) == 0, "run python -m artifacts.unicode_sets --write"


def test_contract_database_and_site_refuse_exactly_the_derived_set_in_a_name() -> None:
    refused = (
        unicode_sets.invisible()
        | unicode_sets.code_points(unicode_sets.CONTROLS)
        | unicode_sets.code_points(unicode_sets.BIDI_CONTROL)
    )
    assert unicode_sets.default_ignorable() <= refused
    everything = [code for code in unicode_sets.ALL_CODE_POINTS if code not in SURROGATES]
    # Issue 31's rule refuses names that mix scripts too ("a" and a Greek mark): only the refusals
    # of a control, bidirectional or invisible character are this set's.
    invisible = "author must not contain control, bidirectional or invisible characters"
    contract = {code for code in everything if invisible in (author_problem("a" + chr(code)) or "")}
    database_check = COLUMN_CHECKS[("Messages", "author")]
    database = {code for code in everything if invisible in (database_check("a" + chr(code)) or "")}
    script = (unicode_sets.APP_JS).read_text()
    site_pattern = re.search(r"const INVISIBLE =\s*(/\[.*?\]/)gu;", script)
    assert site_pattern is not None
    site = matching_code_points(site_pattern.group(1) + "u")
    assert contract == refused
    assert database == refused
    assert site == refused


@pytest.mark.parametrize(
    "author",
    [
        "ad\u2065min",
        "ad\U000e0080min",
        "ad\U000e01f0min",
        "ad\ufff0min",
        "ad\ufff9min",
        "ad\U0001bca0min",
        "\u2800admin",
        "\u0301admin",
    ],
)
def test_the_names_of_the_issue_are_refused(author: str) -> None:
    assert author_problem(author) is not None


@pytest.mark.parametrize(
    "text", ["\u2065", "\ufff0\ufff8", "\U000e0080", "\U000e0fff", "\u2800", "\u0301", " \u0301\u20dd "]
)
def test_a_text_of_only_these_has_no_visible_character(text: str) -> None:
    assert not visible(text)


@pytest.mark.parametrize("text", ["e\u0301", "\u0600", "a\u2800b", "\U0001f600"])
def test_what_shows_still_passes(text: str) -> None:
    assert visible(text)
