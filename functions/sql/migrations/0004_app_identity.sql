-- The Functions app's managed identity as a database user, with only what its bindings need
-- (Microsoft's SQL trigger and output binding permission lists). $(AppIdentityName) is the
-- user-assigned identity's name, substituted by the migration runner.
IF NOT EXISTS (SELECT 1 FROM sys.database_principals WHERE name = N'$(AppIdentityName)')
    CREATE USER [$(AppIdentityName)] FROM EXTERNAL PROVIDER;
GO

-- The trigger keeps its leases in schema az_func; create it here so the grants below can name it.
IF SCHEMA_ID(N'az_func') IS NULL
    EXEC(N'CREATE SCHEMA az_func');
GO

-- Output binding (MERGE): SELECT, INSERT, UPDATE. SQL trigger: SELECT, VIEW CHANGE TRACKING.
GRANT SELECT, INSERT, UPDATE, VIEW CHANGE TRACKING ON OBJECT::dbo.Messages TO [$(AppIdentityName)];
GRANT SELECT, INSERT, UPDATE, VIEW CHANGE TRACKING ON OBJECT::dbo.Connections TO [$(AppIdentityName)];
-- SQL trigger state: its own tables in az_func.
GRANT CREATE TABLE TO [$(AppIdentityName)];
GRANT CREATE SCHEMA TO [$(AppIdentityName)];
GRANT SELECT, INSERT, UPDATE, DELETE, ALTER ON SCHEMA::az_func TO [$(AppIdentityName)];
GO
