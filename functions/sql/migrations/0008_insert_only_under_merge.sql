-- TR_Messages_insert_only decides from `deleted`, not `inserted` (issue 27). The SQL output binding
-- writes with MERGE ... WHEN MATCHED THEN UPDATE ... WHEN NOT MATCHED THEN INSERT, and SQL Server
-- fires the target's AFTER triggers for every action a MERGE specifies, whether or not a row took
-- that action (MERGE reference, "Trigger implementation"): this UPDATE trigger runs on every publish,
-- inserts included, and what `inserted` holds then is not documented. `deleted` holds a row only
-- when a row was updated or deleted, so the trigger refuses exactly the updates, whichever reading
-- holds. A new migration rather than an edit of 0007: a migration that has run on a database keeps
-- the text that ran (docs/sources/azure-sql.md).
CREATE OR ALTER TRIGGER dbo.TR_Messages_insert_only ON dbo.Messages AFTER UPDATE
AS
BEGIN
    SET NOCOUNT ON;
    IF EXISTS (SELECT 1 FROM deleted)
        THROW 50001, N'A stored message never changes: dbo.Messages is insert-only.', 1;
END
GO
