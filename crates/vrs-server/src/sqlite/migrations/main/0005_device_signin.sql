-- A tablet's user signs in with a passcode sent to the tablet's own e-mail (as staff
-- do with theirs): the same sign-in state, kept on the device. The session it leads
-- to lives in `sessions` under the tablet's e-mail.
ALTER TABLE devices ADD COLUMN passcode_hash BLOB;
ALTER TABLE devices ADD COLUMN passcode_expires TEXT;
ALTER TABLE devices ADD COLUMN passcode_sent TEXT;
ALTER TABLE devices ADD COLUMN failures INTEGER NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN locked_until TEXT;
