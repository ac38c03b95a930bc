-- Change tracking on the database: the SQL trigger reads changes through it.
-- Changes older than the retention are gone for a trigger that was stopped longer than that;
-- history still has the rows, so reconnecting clients lose nothing.
IF NOT EXISTS (SELECT 1 FROM sys.change_tracking_databases WHERE database_id = DB_ID())
    ALTER DATABASE CURRENT SET CHANGE_TRACKING = ON (CHANGE_RETENTION = 2 DAYS, AUTO_CLEANUP = ON);
GO

-- The SQL trigger needs compatibility level 130 or higher.
IF (SELECT compatibility_level FROM sys.databases WHERE database_id = DB_ID()) < 130
    ALTER DATABASE CURRENT SET COMPATIBILITY_LEVEL = 150;
GO
