-- A session is a staff member's (device NULL) or a tablet user's (see 0006_session_device.sql).
ALTER TABLE vrs.sessions ADD COLUMN device uuid;
-- The sessions of a tablet, ended when it is revoked.
CREATE INDEX sessions_by_device ON vrs.sessions (device);
