-- The tablet's settings and enrolment (server, device, key pair), as key/value.
CREATE TABLE config (
    key   TEXT PRIMARY KEY,
    value BLOB NOT NULL
) WITHOUT ROWID;

-- Every dose record saved on this tablet; never deleted (see outbox.rs).
CREATE TABLE records (
    seq            INTEGER PRIMARY KEY,  -- save order: sent oldest first
    id             TEXT    NOT NULL UNIQUE, -- the client record id, the server's idempotence key
    body           TEXT    NOT NULL,     -- the DoseRecord as it is sent (JSON)
    state          TEXT    NOT NULL,     -- queued | sent | confirmed | held | superseded
    name_confirmed INTEGER NOT NULL,     -- whether the nurse saw the person's name
    saved_at       TEXT    NOT NULL,
    attempts       INTEGER NOT NULL DEFAULT 0,
    receipt        TEXT,                 -- the server's receipt (JSON)
    receipt_at     TEXT,
    hold_reason    TEXT,
    hold_detail    TEXT,
    replaces       TEXT                  -- the held record this one corrects
);
-- The next batch to send, and the status counts: by state, in save order.
CREATE INDEX records_by_state ON records (state, seq);
