-- The Functions app's managed identity as a database user, with only what its bindings need
-- (Microsoft's SQL trigger and output binding permission lists). $(AppIdentityName) is the
-- user-assigned identity's name and $(AppIdentitySid) its client id as a binary(16) SID, both
-- substituted by the migration runner.
-- WITH SID ... TYPE = E creates the Entra user without a Microsoft Graph lookup: FROM EXTERNAL
-- PROVIDER run by a service principal needs a server identity with Directory Readers (error 33134),
-- which only a tenant admin can grant. A user of that name with another SID (the identity was
-- recreated) is replaced; the grants below are given again.
IF EXISTS (SELECT 1 FROM sys.database_principals WHERE name = N'$(AppIdentityName)' AND sid <> $(AppIdentitySid))
    DROP USER [$(AppIdentityName)];
GO

IF NOT EXISTS (SELECT 1 FROM sys.database_principals WHERE name = N'$(AppIdentityName)')
    CREATE USER [$(AppIdentityName)] WITH SID = $(AppIdentitySid), TYPE = E;
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
