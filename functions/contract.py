"""The public API contract: what a valid publish request is, and what clients receive.

Pure Python with no Azure imports, so the rules are tested directly and read in one place.
Every rejection is a `ContractError` carrying the HTTP status and the documented JSON error.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
import uuid
from datetime import UTC, datetime
from typing import Any

# The Functions host imports the app's modules from its folder (`import contract`); the local mode
# and the tools import them as the package `functions`.
if __package__:
    from functions import names
else:
    import names  # type: ignore[no-redef]

MAX_TEXT_CHARS = 2000
MAX_AUTHOR_CHARS = 64
# 2,000 characters of 4-byte UTF-8 plus an author and JSON framing fit well under this.
MAX_BODY_BYTES = 16 * 1024
DEFAULT_TAKE = 50
MAX_TAKE = 100
LATEST = "latest"
"""The `before` value that asks for the newest page of history."""
MAX_ID = 9223372036854775807
"""The largest BIGINT: `before` of the newest page (`latest`) in the route form."""
ALLOWED_FIELDS = frozenset({"text", "author"})


class ContractError(Exception):
    """A request the contract rejects: HTTP status, machine-readable code, human message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message

    def body(self) -> str:
        """The documented error body: `{"error": {"code", "message"}}`."""
        return json.dumps({"error": {"code": self.code, "message": self.message}})


def _media_type(content_type: str | None) -> tuple[str, str | None]:
    if not content_type:
        return "", None
    parts = [part.strip() for part in content_type.split(";")]
    charset = None
    for parameter in parts[1:]:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset":
            charset = value.strip().strip('"').lower()
    return parts[0].lower(), charset


def parse_publish(body: bytes, content_type: str | None) -> dict[str, Any]:
    """Validate a publish request; return `{"text", "author"}` or raise ContractError."""
    media_type, charset = _media_type(content_type)
    if media_type != "application/json":
        raise ContractError(
            415, "unsupported_media_type", "send the message as Content-Type: application/json"
        )
    if charset not in (None, "utf-8", "utf8"):
        raise ContractError(415, "unsupported_charset", f"charset {charset!r} is not supported; use utf-8")
    if len(body) > MAX_BODY_BYTES:
        raise ContractError(413, "payload_too_large", f"the body is larger than {MAX_BODY_BYTES} bytes")
    if not body.strip():
        raise ContractError(400, "empty_body", 'the body is empty; send {"text": "..."}')
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ContractError(400, "invalid_encoding", "the body is not valid UTF-8") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise ContractError(400, "malformed_json", f"the body is not valid JSON: {error.msg}") from None
    except RecursionError:
        raise ContractError(400, "malformed_json", "the body nests JSON too deeply") from None
    except ValueError as error:  # e.g. a number with more digits than Python converts
        raise ContractError(400, "malformed_json", f"the body is not valid JSON: {error}") from None
    if not isinstance(document, dict):
        raise ContractError(400, "invalid_body", 'the body must be a JSON object such as {"text": "hello"}')
    unknown = sorted(set(document) - ALLOWED_FIELDS)
    if unknown:
        raise ContractError(
            400, "unknown_field", f"unknown field(s): {', '.join(unknown)}; allowed: author, text"
        )
    message_text = document.get("text")
    if not isinstance(message_text, str):
        raise ContractError(400, "invalid_text", "text is required and must be a string")
    if not message_text.strip():
        raise ContractError(400, "invalid_text", "text must not be empty")
    _check_storable("text", message_text, "invalid_text")
    if not visible(message_text):
        raise ContractError(
            400,
            "invalid_text",
            "text has no visible character (only spaces, controls, zero-width characters or combining marks)",
        )
    if sql_length(message_text) > MAX_TEXT_CHARS:
        raise ContractError(
            400,
            "text_too_long",
            f"text has {sql_length(message_text)} characters as SQL Server counts them (UTF-16: most emoji "
            f"count 2); at most {MAX_TEXT_CHARS}",
        )
    author = document.get("author")
    if author is not None and not isinstance(author, str):
        raise ContractError(400, "invalid_author", "author must be a string or null")
    if isinstance(author, str):
        author = author.strip() or None
    if author is not None:
        _check_storable("author", author, "invalid_author")
        if (problem := author_problem(author)) is not None:
            raise ContractError(400, "invalid_author", problem)
        if sql_length(author) > MAX_AUTHOR_CHARS:
            raise ContractError(
                400,
                "invalid_author",
                f"author has {sql_length(author)} characters as SQL Server counts them; at most "
                f"{MAX_AUTHOR_CHARS}",
            )
    return {"text": message_text, "author": author}


# Characters no author name needs, each of which lets one name pass for another: controls, the
# bidirectional embeddings, overrides, isolates and marks ("\u202enimda" displays as "admin"), and
# the zero-width and other invisible characters ("adm\u200bin" too). Code point ranges rather than
# Unicode categories, so that the site's counter (site/app.js) can hold exactly the same list
# whatever Unicode version its browser knows. Each entry: (first, last) inclusive. INVISIBLE_RANGES
# is generated from the Unicode Character Database (`python -m artifacts.unicode_sets --write`):
# Default_Ignorable_Code_Point, the other format characters but the prepended concatenation marks,
# the line separators and the Braille blank, less the controls and bidi controls listed apart.
CONTROL_RANGES = ((0x0000, 0x001F), (0x007F, 0x009F))
"""C0 controls, DEL and C1 controls."""
BIDI_RANGES = ((0x061C, 0x061C), (0x200E, 0x200F), (0x202A, 0x202E), (0x2066, 0x2069))
"""Arabic letter mark, LRM/RLM, embeddings and overrides (LRE..RLO), isolates (LRI..PDI)."""
INVISIBLE_RANGES = (
    (0x00AD, 0x00AD),  # soft hyphen
    (0x034F, 0x034F),  # combining grapheme joiner
    (0x115F, 0x1160),  # hangul choseong filler .. hangul jungseong filler
    (0x17B4, 0x17B5),  # khmer vowel inherent aq .. khmer vowel inherent aa
    (0x180B, 0x180F),  # mongolian free variation selector one .. mongolian free variation selector four
    (0x200B, 0x200D),  # zero width space .. zero width joiner
    (0x2028, 0x2029),  # line separator .. paragraph separator
    (0x2060, 0x2065),  # word joiner .. u+2065
    (0x206A, 0x206F),  # inhibit symmetric swapping .. nominal digit shapes
    (0x2800, 0x2800),  # braille pattern blank
    (0x3164, 0x3164),  # hangul filler
    (0xFE00, 0xFE0F),  # variation selector-1 .. variation selector-16
    (0xFEFF, 0xFEFF),  # zero width no-break space
    (0xFFA0, 0xFFA0),  # halfwidth hangul filler
    (0xFFF0, 0xFFFB),  # u+fff0 .. interlinear annotation terminator
    (0x13430, 0x13438),  # egyptian hieroglyph vertical joiner .. egyptian hieroglyph end segment
    (0x1BCA0, 0x1BCA3),  # shorthand format letter overlap .. shorthand format up step
    (0x1D173, 0x1D17A),  # musical symbol begin beam .. musical symbol end phrase
    (0xE0000, 0xE0FFF),  # u+e0000 .. u+e0fff
)
"""Characters that display as nothing by themselves (zero-width, joiners, fillers, selectors, tags)."""
AUTHOR_REFUSED_RANGES = CONTROL_RANGES + BIDI_RANGES + INVISIBLE_RANGES
"""What `author` must not contain."""
_INVISIBLE = re.compile(
    "["
    + "".join(
        re.escape(chr(first)) + ("-" + re.escape(chr(last)) if last != first else "")
        for first, last in CONTROL_RANGES + BIDI_RANGES + INVISIBLE_RANGES
    )
    + r"\s]"
)
_AUTHOR_REFUSED = {
    code: f"U+{code:04X}" for first, last in AUTHOR_REFUSED_RANGES for code in range(first, last + 1)
}


def visible(value: str) -> bool:
    """Whether anything of `value` shows once whitespace, controls, bidirectional controls and
    zero-width or other invisible characters (the ranges above) are taken out: a combining mark
    alone shows nothing either (it has no character to combine with)."""
    return any(not unicodedata.category(c).startswith("M") for c in _INVISIBLE.sub("", value))


def author_problem(author: str) -> str | None:
    """Why an author name is refused (a control, bidirectional or invisible character, named by
    its code point and position), or None when it may be stored."""
    if author[:1] and unicodedata.category(author[0]).startswith("M"):
        return (
            f"author must not start with a combining mark: U+{ord(author[0]):04X} (it has no character to "
            "combine with, and shows nothing or the mark alone)"
        )
    for position, character in enumerate(author, start=1):
        if (code := _AUTHOR_REFUSED.get(ord(character))) is not None:
            return (
                f"author must not contain control, bidirectional or invisible characters: {code} at "
                f"character {position} (such a character lets one name display as another)"
            )
    return _disguise_problem(author)


def _disguise_problem(author: str) -> str | None:
    """A name that could pass for another (names.py: mixed scripts, Cyrillic posing as Latin)."""
    if (how := names.disguise(author)) is None:
        return None
    return f"author {how}, so that it could pass for another name: write it in one script"


def sql_length(value: str) -> int:
    """The length NVARCHAR(n) counts: UTF-16 code units (a character beyond U+FFFF, most emoji, is 2)."""
    return len(value.encode("utf-16-le", "surrogatepass")) // 2


def _check_storable(field: str, value: str, code: str) -> None:
    """No NUL, and no lone surrogate (JSON's `\\ud800` decodes to one; UTF-8 and SQL cannot hold it)."""
    if "\x00" in value:
        raise ContractError(400, code, f"{field} must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ContractError(400, code, f"{field} contains an unpaired UTF-16 surrogate") from None


def utc_timestamp(moment: datetime) -> str:
    """ISO-8601 UTC with milliseconds and `Z`, the contract's `createdAt` format."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


_CANONICAL_KEY = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def parse_message_key(value: str | None) -> uuid.UUID:
    """A publisher-chosen message key: a UUID in its 36-character form (any case).

    Only that form: SQL Server's UNIQUEIDENTIFIER conversion, which looks the key up, reads
    neither the 32-digit nor the `urn:uuid:` form that Python's `uuid.UUID` also accepts, and a
    key SQL cannot read would miss the stored message and overwrite it as new.
    """
    if value is None or not _CANONICAL_KEY.fullmatch(value):
        raise invalid_key()
    return uuid.UUID(value)


def invalid_key() -> ContractError:
    """The answer to a message key that is not a UUID in its 36-character form."""
    return ContractError(
        400, "invalid_key", "the message key must be a UUID such as 3f2b8c4e-1d2a-4c5b-9e7f-0a1b2c3d4e5f"
    )


def key_in_use(key: uuid.UUID, retry_after: int = 1) -> ContractError:
    """The answer to a request whose key another request claimed and is still writing: retry
    after `retry_after` seconds (the retry finds the stored message, or takes over a claim whose
    request stored nothing)."""
    return ContractError(
        409,
        "key_in_use",
        f"another request with message key {key} is being stored; retry in {retry_after} s",
    )


def claim_retry_after(claimed_at: str | None, now: datetime, fresh_seconds: int, stale_seconds: int) -> int:
    """How long a `key_in_use` answer tells the client to wait: 1 s while the claim is younger than
    `fresh_seconds` (its publish is being written), else the whole seconds until it is
    `stale_seconds` old and a retry takes it over (its publisher most likely stopped). A claim time
    that cannot be read is treated as fresh. SQL bindings give DATETIME2 without an offset; the
    database's clock is UTC (SYSUTCDATETIME)."""
    if not claimed_at:
        return 1
    try:
        claimed = datetime.fromisoformat(claimed_at.removesuffix("Z")).replace(tzinfo=UTC)
    except ValueError:
        return 1
    age = (now - claimed).total_seconds()
    if age < fresh_seconds:
        return 1
    return max(1, math.ceil(stale_seconds - age) + 1)


def is_same_message(row: dict[str, Any], fields: dict[str, Any]) -> bool:
    """Whether a stored row holds the text and author a publish request carries: a retry of the
    same publish is, a different message under a key already used is not."""
    return row["text"] == fields["text"] and (row.get("author") or None) == fields["author"]


def new_message_row(fields: dict[str, Any], now: datetime, key: uuid.UUID) -> dict[str, Any]:
    """The row the publish function writes (column names of dbo.Messages; `id` is an identity)."""
    return {
        "messageKey": str(key),
        "text": fields["text"],
        "author": fields["author"],
        "createdAt": utc_timestamp(now),
    }


def _parse_timestamp(value: Any) -> str:
    if isinstance(value, datetime):
        return utc_timestamp(value)
    text = str(value).strip().replace(" ", "T")
    if text.endswith("Z"):
        text = text[:-1]
    # SQL datetime2 can carry 7 fractional digits; Python parses at most 6.
    if "." in text:
        head, fraction = text.split(".", 1)
        text = f"{head}.{fraction[:6]}"
    return utc_timestamp(datetime.fromisoformat(text).replace(tzinfo=UTC))


def lag_ms(created_at: str, now: datetime) -> int:
    """Milliseconds from a message's `createdAt` (the contract's format) to `now`, at least 0 (the
    publisher's clock and the broadcaster's may differ by a little)."""
    created = datetime.fromisoformat(created_at.replace("Z", "+00:00"))
    return max(0, round((now - created).total_seconds() * 1000))


def message_from_row(row: dict[str, Any]) -> dict[str, Any]:
    """A stored row as clients see it: `{id, key, text, author, createdAt}`."""
    return {"id": int(row["id"]), **accepted_message(row)}


def accepted_message(row: dict[str, Any]) -> dict[str, Any]:
    """A row written or found by a publish, as its answer shows it: `{key, text, author, createdAt}`
    (the id, which SQL assigns on insert, comes with the broadcast)."""
    return {
        "key": str(row["messageKey"]).lower(),
        "text": row["text"],
        "author": row.get("author"),
        "createdAt": _parse_timestamp(row["createdAt"]),
    }


def _ascii_number(value: str, digits: int) -> bool:
    """ASCII digits only: `str.isdigit` also accepts superscripts and full-width digits, which
    `int()` or SQL Server's TRY_CONVERT read differently (the SQL input binding converts the raw
    query value itself)."""
    return re.fullmatch(rf"[0-9]{{1,{digits}}}", value) is not None


def _parse_take(take: str | None) -> int:
    if take is None:
        return DEFAULT_TAKE
    # An empty `take=` reaches the SQL binding as '', which TRY_CONVERT makes 0 rows: refuse it.
    if not _ascii_number(take, 3) or not 1 <= int(take) <= MAX_TAKE:
        raise ContractError(400, "invalid_take", f"take must be an integer from 1 to {MAX_TAKE}")
    return int(take)


def parse_history_query(after: str | None, take: str | None) -> tuple[int, int]:
    """Validate `?after=&take=` (or the route values of the same names); return (after, take) or
    raise ContractError. `after` is required (an empty one is 0, the start); `take` defaults to 50."""
    if after is None:
        raise ContractError(
            400, "invalid_after", "after is required: the id of the last message seen (0 for the oldest)"
        )
    after_value = 0
    if after != "":
        if not _ascii_number(after, 18):
            raise ContractError(400, "invalid_after", "after must be a message id (a non-negative integer)")
        after_value = int(after)
    return after_value, _parse_take(take)


def parse_page_query(before: str | None, take: str | None) -> tuple[int | None, int]:
    """Validate `?before=&take=` of a history page; return (before, take), `before` None for
    `latest` (the newest page), or raise ContractError."""
    if before in (LATEST, str(MAX_ID)):  # the route form of `latest` is the largest BIGINT
        return None, _parse_take(take)
    if before is None or not _ascii_number(before, 18):
        raise ContractError(
            400, "invalid_before", f"before must be a message id (a non-negative integer) or {LATEST}"
        )
    return int(before), _parse_take(take)


def history_after_path(after: int, take: int) -> str:
    """Where the `history_after` function answers `?after=&take=`, relative to `/api/messages`
    (the host adds the route prefix): route values that a route constraint holds to a number."""
    return f"messages/after/{after}/take/{take}"


def history_before_path(before: int | None, take: int) -> str:
    """Where the `history_before` function answers `/page?before=&take=`, relative to
    `/api/messages/page`; `latest` (None) is the largest id."""
    return f"before/{MAX_ID if before is None else before}/take/{take}"


def inserted_items(changes_json: str) -> list[dict[str, Any]]:
    """The inserted rows of a SQL trigger batch, in id order (updates and deletes are not new)."""
    changes = json.loads(changes_json)
    items = [change["Item"] for change in changes if change.get("Operation") == 0]
    return sorted(items, key=lambda item: int(item["id"]))


def signalr_messages(target: str, arguments: list[Any]) -> str:
    """One SignalR output message per argument, for the `signalR` output binding."""
    return json.dumps([{"target": target, "arguments": [argument]} for argument in arguments])


def connection_id(invocation_json: str) -> str:
    """The connection id from a SignalR trigger's invocation context."""
    context = json.loads(invocation_json)
    value = context.get("ConnectionId") or context.get("connectionId")
    if not value:
        raise ValueError("the SignalR invocation context has no ConnectionId")
    return str(value)
