-- Published messages: the source of truth for every newMessage broadcast and for history.
-- The primary key is the message's key, which a publisher may choose (PUT /api/messages/{key}): the
-- SQL output binding upserts on the primary key, so a retried publish updates the row it already
-- wrote instead of adding one, and the SQL trigger, which broadcasts inserts only, sends it once.
-- The id, in which history and broadcasts are ordered, is the clustered index.
IF OBJECT_ID(N'dbo.Messages', N'U') IS NULL
    CREATE TABLE dbo.Messages (
        id BIGINT IDENTITY(1, 1) NOT NULL,
        messageKey UNIQUEIDENTIFIER NOT NULL,
        text NVARCHAR(2000) NOT NULL,
        author NVARCHAR(64) NULL,
        createdAt DATETIME2(3) NOT NULL,
        CONSTRAINT PK_Messages PRIMARY KEY NONCLUSTERED (messageKey),
        CONSTRAINT UQ_Messages_id UNIQUE CLUSTERED (id)
    );
GO

IF NOT EXISTS (SELECT 1 FROM sys.change_tracking_tables WHERE object_id = OBJECT_ID(N'dbo.Messages'))
    ALTER TABLE dbo.Messages ENABLE CHANGE_TRACKING;
GO
