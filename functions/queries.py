"""The T-SQL the SQL input bindings run, written once.

Azure SQL runs these through the bindings; the local mode translates the same text to SQLite.
Query-string values reach SQL as strings, so conversions use TRY_CONVERT: a bad value selects
nothing instead of failing the binding, and the function answers 400 itself.
"""

# Both history queries read route values only, never query-string values: the Functions host fails
# a call (500, before the function runs) when a binding expression names a query value that is
# absent, and the SQL binding splits `parameters` on `,` and `=` after putting the values in, so a
# query value such as `1=2` breaks it. Route constraints (`long`, `int`) admit neither.
HISTORY = (
    "SELECT TOP (CASE WHEN TRY_CONVERT(INT, @Take) BETWEEN 1 AND 100 "
    "THEN TRY_CONVERT(INT, @Take) ELSE 0 END) "
    "id, messageKey, text, author, createdAt FROM dbo.Messages "
    "WHERE id > COALESCE(TRY_CONVERT(BIGINT, @After), 0) ORDER BY id"
)
HISTORY_PARAMETERS = "@After={after},@Take={take}"

# The newest `take` messages below `before` (the newest page of all: the largest BIGINT), returned
# in id order: the first screen in one request, then older history page by page. `id <` one BIGINT
# lets SQL Server seek the primary key backwards instead of scanning.
HISTORY_PAGE = (
    "SELECT id, messageKey, text, author, createdAt FROM ("
    "SELECT TOP (CASE WHEN TRY_CONVERT(INT, @Take) BETWEEN 1 AND 100 "
    "THEN TRY_CONVERT(INT, @Take) ELSE 0 END) "
    "id, messageKey, text, author, createdAt FROM dbo.Messages "
    "WHERE id < TRY_CONVERT(BIGINT, @Before) ORDER BY id DESC"
    ") AS newest ORDER BY id"
)
HISTORY_PAGE_PARAMETERS = "@Before={before},@Take={take}"

# Claim a publisher's key before its message is written (PUT /api/messages/{key}): a stored
# procedure of migration 0007, run by the input binding (CommandType StoredProcedure) before the
# function body. One row: `won` (1 for exactly one of racing requests) and the stored message, if any.
CLAIM_MESSAGE_KEY = "dbo.ClaimMessageKey"
CLAIM_MESSAGE_KEY_PARAMETERS = "@Key={key}"
CLAIM_STALE_SECONDS = 60
"""A claim whose message never came is taken over after this long (the procedure's DATEADD)."""
CLAIMED_AT = "SELECT claimedAt FROM dbo.MessageKeys WHERE messageKey = TRY_CONVERT(UNIQUEIDENTIFIER, @Key)"
"""When the key was claimed: how long a `key_in_use` answer tells the client to wait (Retry-After)."""
CLAIM_FRESH_SECONDS = 5
"""A claim younger than this is a publish still being written: retry in a second. An older one was
most likely left by a publisher that stopped: retry once it can be taken over."""
RELEASED_AT = "2000-01-01T00:00:00.000Z"
"""The `claimedAt` a request that stored nothing writes back: older than any stale limit."""

# The connections the table says are open, for the presence check to ask SignalR about: all of
# them while there are at most 1,000 (a Standard unit's limit), else a random 1,000 per run, which
# keeps each run short and still reaches every row.
OPEN_CONNECTIONS = (
    "SELECT TOP (1000) connectionId FROM dbo.Connections WHERE disconnectedAt IS NULL ORDER BY NEWID()"
)

# Housekeeping, run through input bindings (they return no rows): closed connections are kept a
# day for the record, then deleted; messages older than `@Days` are deleted when it is above 0.
# A bounded batch per run keeps each transaction short; the next run continues.
PURGE_CONNECTIONS = (
    "DELETE FROM dbo.Connections WHERE connectionId IN ("
    "SELECT TOP (10000) connectionId FROM dbo.Connections "
    "WHERE disconnectedAt < DATEADD(HOUR, -24, SYSUTCDATETIME()))"
)
PURGE_MESSAGES = (
    "DELETE FROM dbo.Messages WHERE id IN ("
    "SELECT TOP (10000) id FROM dbo.Messages WHERE TRY_CONVERT(INT, @Days) > 0 "
    "AND createdAt < DATEADD(DAY, -TRY_CONVERT(INT, @Days), SYSUTCDATETIME()) ORDER BY id)"
)

PURGE_CLAIMS = (
    "DELETE FROM dbo.MessageKeys WHERE messageKey IN ("
    "SELECT TOP (10000) messageKey FROM dbo.MessageKeys "
    "WHERE claimedAt < DATEADD(HOUR, -24, SYSUTCDATETIME()))"
)

ONLINE_COUNT = "SELECT COUNT(*) AS online FROM dbo.Connections WHERE disconnectedAt IS NULL"

HEALTH = "SELECT 1 AS ok"
