-- Tablets, registered by their municipality (the tablet registration form) and
-- enrolled once with a one-time code; from then on a tablet is known only by the
-- Ed25519 public key it registered, and every request it makes is signed with it.
CREATE TABLE devices (
    id            TEXT    PRIMARY KEY,  -- the DeviceId (UUID)
    municipality  INTEGER NOT NULL,
    site_kind     TEXT    NOT NULL,     -- 'clinic' | 'site'
    site_code     TEXT    NOT NULL,
    email         TEXT    NOT NULL UNIQUE, -- one per tablet: its user's passcodes go there
    address       TEXT    NOT NULL,
    delivery      TEXT    NOT NULL,
    contact       TEXT    NOT NULL,
    notes         TEXT    NOT NULL,
    doses_per_day INTEGER,
    created_at    TEXT    NOT NULL,
    enrol_hash    BLOB    UNIQUE,       -- SHA-256 of the pending code; NULL once used
    enrol_expires TEXT,
    public_key    BLOB,                 -- set at enrolment
    enrolled_at   TEXT,
    revoked_at    TEXT
);
-- A municipality's list of its tablets.
CREATE INDEX devices_by_municipality ON devices (municipality);

-- Nonces of signed requests seen within the clock window: a replayed request is
-- refused. Rows older than the window are deleted as new ones come.
CREATE TABLE device_nonces (
    device  TEXT    NOT NULL,
    nonce   BLOB    NOT NULL,
    seen_at INTEGER NOT NULL,  -- Unix seconds
    PRIMARY KEY (device, nonce)
) WITHOUT ROWID;
