"""Names that can pass for other names: the mixed-script and whole-script confusable checks that
browsers apply to host names (Unicode Technical Standard #39, "Unicode Security Mechanisms"),
applied to author names. The API refuses such a name (contract.author_problem); the site marks one
stored before the rule (site/app.js, `disguise`, the same rule; a browser test holds the two
together on the same names).

The rule, as Chromium's IDN spoof checker applies it to a host label (docs/sources/site.md):
1. Mixed scripts, UTS #39 section 5.2 "Highly Restrictive": each character's Script_Extensions,
   ignoring Common and Inherited, augmented as section 5.1 says (Han also counts as Japanese,
   Korean and Han-with-Bopomofo; Hiragana and Katakana as Japanese; Hangul as Korean; Bopomofo as
   Han-with-Bopomofo). A name passes when one script covers every character, or when Latin with
   Japanese, Latin with Korean, or Latin with Han-with-Bopomofo does ("Ana" in Latin
   with its Katakana spelling passes; "Admin" with a Greek capital alpha for its "A" does not).
2. Whole-script confusables: a name all in Cyrillic letters that look like Latin ones (a Cyrillic
   "are", U+0430 U+0440 U+0435) reads as a Latin name; Chromium's list of such letters is used.
"""

from __future__ import annotations

from bisect import bisect_right
from functools import cache

# As in contract.py: the app's folder is the import root on the Functions host, the package
# `functions` in the local mode.
if __package__:
    from functions.unicode_scripts import SCRIPT_RANGES
else:
    from unicode_scripts import SCRIPT_RANGES  # type: ignore[no-redef]

_STARTS = [first for first, _, _ in SCRIPT_RANGES]
# UTS #39 section 5.1: the augmented script sets.
_AUGMENT = {
    "Han": ("Hanb", "Jpan", "Kore"),
    "Hiragana": ("Jpan",),
    "Katakana": ("Jpan",),
    "Hangul": ("Kore",),
    "Bopomofo": ("Hanb",),
}
_WITH_LATIN = ("Jpan", "Kore", "Hanb")
LATIN_ALIKE_CYRILLIC = frozenset("асԁеһіјӏорԛѕԝхуъьҽпгѵѡ")
"""Chromium's `cyrillic_letters_latin_alike_` (components/url_formatter/spoof_checks), lower case."""


@cache
def scripts_of(character: str) -> frozenset[str]:
    """The character's Script_Extensions (empty for Common, Inherited and unassigned)."""
    code = ord(character)
    index = bisect_right(_STARTS, code) - 1
    if index < 0 or SCRIPT_RANGES[index][1] < code:
        return frozenset()
    return frozenset(SCRIPT_RANGES[index][2].split(" "))


def _augmented(scripts: frozenset[str]) -> frozenset[str]:
    extra = [marker for script in scripts for marker in _AUGMENT.get(script, ())]
    return scripts | frozenset(extra)


def disguise(name: str) -> str | None:
    """How `name` could pass for another name ("mixes Greek and Latin", or "is in Cyrillic
    letters that look like Latin ones"), or None when it passes both checks."""
    sets = [_augmented(found) for character in name if (found := scripts_of(character))]
    if not sets:
        return None
    common = frozenset.intersection(*sets)
    if common:
        letters = [character.lower() for character in name if scripts_of(character)]
        if "Cyrillic" in common and all(letter in LATIN_ALIKE_CYRILLIC for letter in letters):
            return "is in Cyrillic letters that look like Latin ones"
        return None
    for marker in _WITH_LATIN:
        if all("Latin" in found or marker in found for found in sets):
            return None
    named = sorted({min(found - {"Hanb", "Jpan", "Kore"}) for found in sets})
    return f"mixes {' and '.join(named)}"
