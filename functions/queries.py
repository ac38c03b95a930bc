"""The T-SQL the SQL input bindings run, written once.

Azure SQL runs these through the bindings; the local mode translates the same text to SQLite.
Query-string values reach SQL as strings, so conversions use TRY_CONVERT: a bad value selects
nothing instead of failing the binding, and the function answers 400 itself.
"""

HISTORY = (
    "SELECT TOP (CASE WHEN TRY_CONVERT(INT, @Take) BETWEEN 1 AND 100 "
    "THEN TRY_CONVERT(INT, @Take) ELSE 0 END) "
    "id, messageKey, text, author, createdAt FROM dbo.Messages "
    "WHERE id > COALESCE(TRY_CONVERT(BIGINT, @After), 0) ORDER BY id"
)
HISTORY_PARAMETERS = "@After={Query.after},@Take={Query.take}"

# The newest `take` messages below `before` (`latest`: the newest of all), returned in id order:
# the first screen in one request, then older history page by page. `id <` one BIGINT computed
# from the parameters lets SQL Server seek the primary key backwards instead of scanning; a bad
# `before` converts to NULL and selects nothing.
HISTORY_PAGE = (
    "SELECT id, messageKey, text, author, createdAt FROM ("
    "SELECT TOP (CASE WHEN TRY_CONVERT(INT, @Take) BETWEEN 1 AND 100 "
    "THEN TRY_CONVERT(INT, @Take) ELSE 0 END) "
    "id, messageKey, text, author, createdAt FROM dbo.Messages "
    "WHERE id < TRY_CONVERT(BIGINT, CASE WHEN @Before = 'latest' THEN '9223372036854775807' "
    "ELSE @Before END) ORDER BY id DESC"
    ") AS newest ORDER BY id"
)
HISTORY_PAGE_PARAMETERS = "@Before={Query.before},@Take={Query.take}"

ONLINE_COUNT = "SELECT COUNT(*) AS online FROM dbo.Connections WHERE disconnectedAt IS NULL"

HEALTH = "SELECT 1 AS ok"
