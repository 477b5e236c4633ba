-- Municipal users (様式1): one account per lg.jp address, at most ten per
-- municipality, exactly one the transfer contact (access.rs keeps those rules).
-- The sign-in state lives on the user: the pending passcode (a hash), misses, lock.
CREATE TABLE users (
    email            TEXT    PRIMARY KEY,
    municipality     INTEGER NOT NULL,
    team             TEXT    NOT NULL,
    person           TEXT    NOT NULL,
    phone            TEXT    NOT NULL,
    transfer_contact INTEGER NOT NULL,
    created_at       TEXT    NOT NULL,
    passcode_hash    BLOB,
    passcode_expires TEXT,
    passcode_sent    TEXT,
    failures         INTEGER NOT NULL DEFAULT 0,
    locked_until     TEXT
) WITHOUT ROWID;
-- A municipality's user list.
CREATE INDEX users_by_municipality ON users (municipality);

-- 様式2: each municipality's system contact and vaccination contact.
CREATE TABLE contacts (
    municipality INTEGER NOT NULL,
    kind         TEXT    NOT NULL,  -- 'system' | 'vaccination'
    team         TEXT    NOT NULL,
    person       TEXT    NOT NULL,
    phone        TEXT    NOT NULL,
    email        TEXT    NOT NULL,
    PRIMARY KEY (municipality, kind)
) WITHOUT ROWID;

-- Signed-in staff: a session is found by its cookie token's hash.
CREATE TABLE sessions (
    token_hash   BLOB    PRIMARY KEY,
    municipality INTEGER NOT NULL,
    email        TEXT    NOT NULL,
    csrf         TEXT    NOT NULL,
    started      TEXT    NOT NULL,
    last_seen    TEXT    NOT NULL
) WITHOUT ROWID;
-- A user's sessions end with the user.
CREATE INDEX sessions_by_email ON sessions (email);
