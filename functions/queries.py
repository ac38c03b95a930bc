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

ONLINE_COUNT = "SELECT COUNT(*) AS online FROM dbo.Connections WHERE disconnectedAt IS NULL"

HEALTH = "SELECT 1 AS ok"
