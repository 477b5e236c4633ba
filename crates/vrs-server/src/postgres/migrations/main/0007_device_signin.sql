-- A tablet user's sign-in state, kept on the device (see 0005_device_signin.sql).
ALTER TABLE vrs.devices ADD COLUMN passcode_hash bytea;
ALTER TABLE vrs.devices ADD COLUMN passcode_expires timestamp;
ALTER TABLE vrs.devices ADD COLUMN passcode_sent timestamp;
ALTER TABLE vrs.devices ADD COLUMN failures integer NOT NULL DEFAULT 0;
ALTER TABLE vrs.devices ADD COLUMN locked_until timestamp;
