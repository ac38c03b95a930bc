-- A message, once stored, never changes (issue 21). The SQL output binding upserts (MERGE ... WHEN
-- MATCHED THEN UPDATE), and the SQL trigger forwards inserts only, so two racing first writes of one
-- key could broadcast one text and store another. Now a PUT first claims its key through
-- dbo.ClaimMessageKey, run by the publish_with_key function's SQL input binding (CommandType
-- StoredProcedure) before the function body: exactly one racing request gets won = 1 and writes the
-- message; the others see the stored message (200 or 409 key_reused) or a claim still in flight (409
-- key_in_use). dbo.Messages refuses every UPDATE, the last line of defence.

-- One row per claimed key. A claim whose request stored nothing (its body was refused, or the
-- write failed) is released by that request, or taken over once 60 seconds old.
IF OBJECT_ID(N'dbo.MessageKeys', N'U') IS NULL
    CREATE TABLE dbo.MessageKeys (
        messageKey UNIQUEIDENTIFIER NOT NULL CONSTRAINT PK_MessageKeys PRIMARY KEY,
        claimedAt DATETIME2(3) NOT NULL
    );
GO

-- Parameters reach the procedure as NVARCHAR (the binding's SqlParameter(name, string)); the route
-- constraint guid:length(36) admits the 36-character form only. Returns one row: won (1 for the one
-- caller that claimed the key) and the stored message, if any (NULL columns when none).
CREATE OR ALTER PROCEDURE dbo.ClaimMessageKey @Key NVARCHAR(36)
AS
BEGIN
    SET NOCOUNT ON;
    SET XACT_ABORT ON;
    DECLARE @messageKey UNIQUEIDENTIFIER = TRY_CONVERT(UNIQUEIDENTIFIER, @Key);
    DECLARE @won INT = 0;
    IF @messageKey IS NOT NULL AND NOT EXISTS (SELECT 1 FROM dbo.Messages WHERE messageKey = @messageKey)
    BEGIN
        BEGIN TRY
            -- The primary key lets exactly one concurrent INSERT in; the others wait on its key lock,
            -- then fail with error 2627 (violation of PRIMARY KEY constraint).
            INSERT INTO dbo.MessageKeys (messageKey, claimedAt) VALUES (@messageKey, SYSUTCDATETIME());
            SET @won = 1;
        END TRY
        BEGIN CATCH
            IF ERROR_NUMBER() <> 2627
                THROW;
            -- A claim 60 seconds old whose message never came is taken over. READCOMMITTEDLOCK: the
            -- predicate is read under the row's lock (Azure SQL reads row versions by default), so
            -- two takeovers cannot both succeed.
            UPDATE dbo.MessageKeys WITH (READCOMMITTEDLOCK)
                SET claimedAt = SYSUTCDATETIME()
                WHERE messageKey = @messageKey
                    AND claimedAt < DATEADD(SECOND, -60, SYSUTCDATETIME())
                    AND NOT EXISTS (SELECT 1 FROM dbo.Messages WHERE messageKey = @messageKey);
            SET @won = @@ROWCOUNT;
        END CATCH
    END
    SELECT @won AS won, stored.id, stored.messageKey, stored.text, stored.author, stored.createdAt
    FROM (SELECT 1 AS one) AS answer
    LEFT JOIN dbo.Messages AS stored ON stored.messageKey = @messageKey;
END
GO

-- dbo.Messages is insert-only: the output binding's MERGE updates a matched row, and an update is
-- never broadcast, so it would make history differ from what clients received. (The MERGE has no
-- OUTPUT clause, so a trigger on its target is allowed.)
CREATE OR ALTER TRIGGER dbo.TR_Messages_insert_only ON dbo.Messages AFTER UPDATE
AS
BEGIN
    SET NOCOUNT ON;
    IF EXISTS (SELECT 1 FROM inserted)
        THROW 50001, N'A stored message never changes: dbo.Messages is insert-only.', 1;
END
GO

-- The app's identity runs the procedure (ownership chaining: dbo owns it and both tables), releases
-- its own claim through the output binding (MERGE: SELECT, INSERT, UPDATE), and housekeeping deletes
-- claims a day old.
GRANT EXECUTE ON OBJECT::dbo.ClaimMessageKey TO [$(AppIdentityName)];
GRANT SELECT, INSERT, UPDATE, DELETE ON OBJECT::dbo.MessageKeys TO [$(AppIdentityName)];
GO
