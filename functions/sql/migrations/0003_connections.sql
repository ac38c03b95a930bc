-- SignalR connections: one row per connection; disconnectedAt set when it goes away.
IF OBJECT_ID(N'dbo.Connections', N'U') IS NULL
    CREATE TABLE dbo.Connections (
        connectionId NVARCHAR(128) NOT NULL CONSTRAINT PK_Connections PRIMARY KEY,
        connectedAt DATETIME2(3) NULL,
        disconnectedAt DATETIME2(3) NULL
    );
GO

-- The presence count reads only the open connections.
IF NOT EXISTS (SELECT 1 FROM sys.indexes WHERE name = N'IX_Connections_open' AND object_id = OBJECT_ID(N'dbo.Connections'))
    CREATE NONCLUSTERED INDEX IX_Connections_open ON dbo.Connections (connectionId) WHERE disconnectedAt IS NULL;
GO

IF NOT EXISTS (SELECT 1 FROM sys.change_tracking_tables WHERE object_id = OBJECT_ID(N'dbo.Connections'))
    ALTER TABLE dbo.Connections ENABLE CHANGE_TRACKING;
GO
