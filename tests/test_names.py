"""Names that could pass for others (issue 31 item 4): functions/names.py's rule, the API's refusal
built on it, and the site's copy of its data."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from contract import ContractError, parse_publish
from names import LATIN_ALIKE_CYRILLIC, disguise, scripts_of
from unicode_scripts import SCRIPT_RANGES

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("name", "how"),
    [
        ("Admin", None),
        ("Jos\u00e9 M\u00fcller-\u00c5berg", None),  # Latin with diacritics: one script
        ("\u0414\u0438\u043c\u0430", None),  # Cyrillic, not all look-alikes
        ("\u1f08\u0398\u0397\u039d\u0391 2", None),  # Greek, digits are Common
        ("Ana \u30a2\u30ca", None),  # Latin + Katakana: UTS #39 allows Latin with Japanese
        ("\u5c71\u7530 \u592a\u90ce Taro", None),  # Latin + Han
        ("\uae40\ubbfc\uc900 Kim", None),  # Latin + Hangul
        ("\u0391dmin", "mixes Greek and Latin"),  # the Greek capital alpha
        ("p\u0430ypal", "mixes Cyrillic and Latin"),
        ("\uae40 \u30a2\u30ca", "mixes Hangul and Katakana"),  # Korean with Japanese: no single set
        ("\u0430\u0440\u0435", "is in Cyrillic letters that look like Latin ones"),  # reads "are"
    ],
)
def test_the_rule(name: str, how: str | None) -> None:
    assert disguise(name) == how


def test_script_extensions_come_from_the_table() -> None:
    assert scripts_of("a") == {"Latin"} and scripts_of("\u03b1") == {"Greek"}
    assert scripts_of("1") == frozenset() and scripts_of("\u3000") == frozenset()  # Common
    assert "Latin" in scripts_of("\u0301")  # a combining accent counts for the scripts it serves
    assert disguise("Jose\u0301") is None
    assert {"Arabic", "Syriac"} <= scripts_of("\u0640")  # tatweel: several scripts
    starts = [first for first, _, _ in SCRIPT_RANGES]
    assert starts == sorted(starts) and all(first <= last for first, last, _ in SCRIPT_RANGES)


def test_the_api_refuses_a_disguised_name() -> None:
    body = json.dumps({"text": "hi", "author": "\u0391dmin"}).encode()
    with pytest.raises(ContractError) as refused:
        parse_publish(body, "application/json")
    assert refused.value.status == 400 and refused.value.code == "invalid_author"
    assert "mixes Greek and Latin" in refused.value.message
    accepted = parse_publish(
        json.dumps({"text": "hi", "author": "Ana \u30a2\u30ca"}).encode(), "application/json"
    )
    assert accepted["author"] == "Ana \u30a2\u30ca"


def test_the_site_uses_the_same_scripts_and_look_alikes() -> None:
    """The site judges with the browser's Unicode data, over the scripts the table was made from."""
    generator = (ROOT / "scripts" / "unicode_scripts.js").read_text()
    site = (ROOT / "site" / "app.js").read_text()
    listed = re.search(r"const NAMES = `(.*?)`", generator, re.S)
    used = re.search(r"const SCRIPTS = `(.*?)`", site, re.S)
    assert listed and used
    assert used.group(1).split() == listed.group(1).split()
    tabled = {script for _, _, scripts in SCRIPT_RANGES for script in scripts.split(" ")}
    assert tabled <= set(listed.group(1).split())
    alike = re.search(r'const LATIN_ALIKE_CYRILLIC = "(.*?)";', site)
    assert alike and frozenset(alike.group(1)) == LATIN_ALIKE_CYRILLIC
