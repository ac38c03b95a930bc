"""The invisible-character table of the contract and the site, derived from the Unicode Character
Database rather than kept by hand (issue 30, item 9).

`python -m artifacts.unicode_sets --write` rewrites the generated block of `functions/contract.py`
(`INVISIBLE_RANGES`) and the `INVISIBLE` pattern of `site/app.js` from this derivation; a test
regenerates both and compares, and compares the result with ICU's own
`\\p{Default_Ignorable_Code_Point}` over every code point (docs/sources/unicode.md).

Default_Ignorable_Code_Point is a derived property: DerivedCoreProperties.txt gives its derivation
(UAX #44), `Other_Default_Ignorable_Code_Point + Cf + Variation_Selector - White_Space - FFF9..FFFB
- 13430..1343F - Prepended_Concatenation_Mark`. Python's `unicodedata` gives the general category
(Cf) but not the PropList.txt properties, so those are below, as PropList.txt lists them.
"""

from __future__ import annotations

import argparse
import re
import sys
import unicodedata
from collections.abc import Callable, Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONTRACT = ROOT / "functions" / "contract.py"
APP_JS = ROOT / "site" / "app.js"

Ranges = tuple[tuple[int, int], ...]

# PropList.txt (Unicode 14.0-17.0 list the same code points for these four properties).
OTHER_DEFAULT_IGNORABLE_CODE_POINT: Ranges = (
    (0x034F, 0x034F),
    (0x115F, 0x1160),
    (0x17B4, 0x17B5),
    (0x2065, 0x2065),
    (0x3164, 0x3164),
    (0xFFA0, 0xFFA0),
    (0xFFF0, 0xFFF8),
    (0xE0000, 0xE0000),
    (0xE0002, 0xE001F),
    (0xE0080, 0xE00FF),
    (0xE01F0, 0xE0FFF),
)
VARIATION_SELECTOR: Ranges = ((0x180B, 0x180D), (0x180F, 0x180F), (0xFE00, 0xFE0F), (0xE0100, 0xE01EF))
WHITE_SPACE: Ranges = (
    (0x0009, 0x000D),
    (0x0020, 0x0020),
    (0x0085, 0x0085),
    (0x00A0, 0x00A0),
    (0x1680, 0x1680),
    (0x2000, 0x200A),
    (0x2028, 0x2029),
    (0x202F, 0x202F),
    (0x205F, 0x205F),
    (0x3000, 0x3000),
)
PREPENDED_CONCATENATION_MARK: Ranges = (
    (0x0600, 0x0605),
    (0x06DD, 0x06DD),
    (0x070F, 0x070F),
    (0x0890, 0x0891),
    (0x08E2, 0x08E2),
    (0x110BD, 0x110BD),
    (0x110CD, 0x110CD),
)
# Format characters the derivation leaves out of Default_Ignorable_Code_Point because they show:
# interlinear annotation marks and Egyptian hieroglyph format controls.
NOT_IGNORABLE_FORMAT: Ranges = ((0xFFF9, 0xFFFB), (0x13430, 0x1343F))
# Blanks that no property marks as invisible but that show nothing: the Braille pattern blank (a
# name starting with it looks like one without it).
BLANKS: Ranges = ((0x2800, 0x2800),)
# What the contract keeps in lists of their own (CONTROL_RANGES and BIDI_RANGES: PropList.txt's
# Bidi_Control), so the generated list leaves them out.
CONTROLS: Ranges = ((0x0000, 0x001F), (0x007F, 0x009F))
BIDI_CONTROL: Ranges = ((0x061C, 0x061C), (0x200E, 0x200F), (0x202A, 0x202E), (0x2066, 0x2069))
LINE_SEPARATORS: Ranges = ((0x2028, 0x2029),)

ALL_CODE_POINTS = range(0x110000)


def code_points(ranges: Iterable[tuple[int, int]]) -> set[int]:
    """Every code point of inclusive `(first, last)` ranges."""
    return {code for first, last in ranges for code in range(first, last + 1)}


def ranges_of(codes: Iterable[int]) -> Ranges:
    """Sorted code points as inclusive `(first, last)` ranges."""
    merged: list[list[int]] = []
    for code in sorted(codes):
        if merged and merged[-1][1] == code - 1:
            merged[-1][1] = code
        else:
            merged.append([code, code])
    return tuple((first, last) for first, last in merged)


def default_ignorable(category: Callable[[str], str] = unicodedata.category) -> set[int]:
    """Default_Ignorable_Code_Point, derived as DerivedCoreProperties.txt says."""
    format_characters = {code for code in ALL_CODE_POINTS if category(chr(code)) == "Cf"}
    derived = (
        code_points(OTHER_DEFAULT_IGNORABLE_CODE_POINT) | format_characters | code_points(VARIATION_SELECTOR)
    )
    return (
        derived
        - code_points(WHITE_SPACE)
        - code_points(NOT_IGNORABLE_FORMAT)
        - code_points(PREPENDED_CONCATENATION_MARK)
    )


def invisible(category: Callable[[str], str] = unicodedata.category) -> set[int]:
    """What a name must not hold and a text does not show by: Default_Ignorable_Code_Point, every
    other format character that is not a prepended concatenation mark (they show), the line and
    paragraph separators and the blanks; less the controls and bidi controls, which the contract
    lists apart."""
    format_characters = {code for code in ALL_CODE_POINTS if category(chr(code)) == "Cf"}
    shown = code_points(PREPENDED_CONCATENATION_MARK)
    codes = default_ignorable(category) | (format_characters - shown)
    codes |= code_points(LINE_SEPARATORS) | code_points(BLANKS)
    return codes - code_points(CONTROLS) - code_points(BIDI_CONTROL)


def _name(code: int) -> str:
    return unicodedata.name(chr(code), f"U+{code:04X}").lower()


def contract_block(ranges: Ranges) -> str:
    """The generated `INVISIBLE_RANGES = (...)` of functions/contract.py."""
    lines = ["INVISIBLE_RANGES = ("]
    for first, last in ranges:
        what = _name(first) if first == last else f"{_name(first)} .. {_name(last)}"
        lines.append(f"    (0x{first:04X}, 0x{last:04X}),  # {what}"[:110].rstrip())
    lines.append(")")
    return "\n".join(lines)


def _js_point(code: int) -> str:
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\u{{{code:x}}}"


def site_pattern(ranges: Ranges) -> str:
    """The site's `INVISIBLE` pattern: controls, bidi controls, then the generated ranges."""
    parts = []
    for first, last in CONTROLS + BIDI_CONTROL + ranges:
        parts.append(_js_point(first) + ("" if first == last else "-" + _js_point(last)))
    return "/[" + "".join(parts) + "]/gu"


_CONTRACT_BLOCK = re.compile(r"^INVISIBLE_RANGES = \(\n.*?\n\)$", re.S | re.M)
_SITE_PATTERN = re.compile(r"(const INVISIBLE =\s*)/\[.*?\]/gu")


def rewrite(contract: str, script: str, ranges: Ranges) -> tuple[str, str]:
    """The two files with the generated parts replaced."""
    contract, found = _CONTRACT_BLOCK.subn(lambda _match: contract_block(ranges), contract)
    if found != 1:
        raise ValueError("functions/contract.py: no INVISIBLE_RANGES block to replace")
    script, found = _SITE_PATTERN.subn(lambda m: m.group(1) + site_pattern(ranges), script)
    if found != 1:
        raise ValueError("site/app.js: no INVISIBLE pattern to replace")
    return contract, script


def main(argv: list[str] | None = None) -> int:
    """Check (default) or `--write` the generated parts; 1 when they are stale."""
    parser = argparse.ArgumentParser(prog="python -m artifacts.unicode_sets", description=__doc__)
    parser.add_argument("--write", action="store_true", help="rewrite the two files")
    arguments = parser.parse_args(argv)
    ranges = ranges_of(invisible())
    contract, script = rewrite(CONTRACT.read_text(), APP_JS.read_text(), ranges)
    if arguments.write:
        CONTRACT.write_text(contract)
        APP_JS.write_text(script)
        return 0
    stale = [p.name for p, text in ((CONTRACT, contract), (APP_JS, script)) if p.read_text() != text]
    if stale:
        print(f"stale: {', '.join(stale)}; run python -m artifacts.unicode_sets --write", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
