-- Tablets, registered by their municipality and enrolled once with a one-time code;
-- from then on known only by the Ed25519 public key they registered (see 0003_devices.sql
-- of the embedded store, which this mirrors).
CREATE TABLE vrs.devices (
    id            uuid      PRIMARY KEY,
    municipality  integer   NOT NULL,
    site_kind     text      NOT NULL,
    site_code     text      NOT NULL,
    email         text      NOT NULL UNIQUE,
    address       text      NOT NULL,
    delivery      text      NOT NULL,
    contact       text      NOT NULL,
    notes         text      NOT NULL,
    doses_per_day integer,
    created_at    timestamp NOT NULL,
    enrol_hash    bytea     UNIQUE,
    enrol_expires timestamp,
    public_key    bytea,
    enrolled_at   timestamp,
    revoked_at    timestamp
);
-- A municipality's list of its tablets.
CREATE INDEX devices_by_municipality ON vrs.devices (municipality);

-- Nonces of signed requests within the clock window (replay protection).
CREATE TABLE vrs.device_nonces (
    device  uuid   NOT NULL,
    nonce   bytea  NOT NULL,
    seen_at bigint NOT NULL,
    PRIMARY KEY (device, nonce)
);
