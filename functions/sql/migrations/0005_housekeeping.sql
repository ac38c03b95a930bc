-- Housekeeping by the app's identity (the purge_expired function): closed connection rows after a
-- day, and messages past the MessageRetentionDays app setting. Only DELETE is added; the output
-- binding and the trigger keep the grants of 0004.
GRANT DELETE ON OBJECT::dbo.Messages TO [$(AppIdentityName)];
GRANT DELETE ON OBJECT::dbo.Connections TO [$(AppIdentityName)];
GO
