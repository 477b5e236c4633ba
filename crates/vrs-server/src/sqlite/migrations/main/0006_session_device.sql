-- A session is a staff member's (device NULL) or a tablet user's (the tablet's id):
-- a tablet's session serves only that tablet's name look-up, never the staff API, and
-- ends when the tablet is revoked.
ALTER TABLE sessions ADD COLUMN device TEXT;
-- The sessions of a tablet, ended when it is revoked.
CREATE INDEX sessions_by_device ON sessions (device);
