-- Least privilege: 0004 granted the app's identity CREATE SCHEMA, which it never uses. The SQL
-- trigger creates schema az_func only when it is missing, and 0004 creates it first, so the
-- identity needs CREATE TABLE and its rights on az_func only. 0004's text stays as it was applied
-- (the runner would run a changed file again, and a dropped GRANT line would not take the
-- permission back on a database that already has it): this revokes it, on every database.
-- The guard names the identity's SID as well as its name, so when the identity is recreated (0004
-- runs again for the new SID and grants again) this migration's checksum changes and it runs again.
IF EXISTS (SELECT 1 FROM sys.database_principals WHERE name = N'$(AppIdentityName)' AND sid = $(AppIdentitySid))
    REVOKE CREATE SCHEMA FROM [$(AppIdentityName)];
GO
