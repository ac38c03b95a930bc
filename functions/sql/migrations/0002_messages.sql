-- Published messages: the source of truth for every newMessage broadcast and for history.
IF OBJECT_ID(N'dbo.Messages', N'U') IS NULL
    CREATE TABLE dbo.Messages (
        id BIGINT IDENTITY(1, 1) NOT NULL CONSTRAINT PK_Messages PRIMARY KEY,
        messageKey UNIQUEIDENTIFIER NOT NULL CONSTRAINT UQ_Messages_messageKey UNIQUE,
        text NVARCHAR(2000) NOT NULL,
        author NVARCHAR(64) NULL,
        createdAt DATETIME2(3) NOT NULL
    );
GO

IF NOT EXISTS (SELECT 1 FROM sys.change_tracking_tables WHERE object_id = OBJECT_ID(N'dbo.Messages'))
    ALTER TABLE dbo.Messages ENABLE CHANGE_TRACKING;
GO
