-- Bearer tokens for staff and tablets, until sign-in by passcode and signed tablet
-- requests replace them. Only a hash is kept: a token is shown once, when made.
CREATE TABLE api_tokens (
    token_hash   BLOB    PRIMARY KEY,  -- SHA-256 of the token
    kind         TEXT    NOT NULL,     -- 'staff' | 'device'
    municipality INTEGER NOT NULL,
    subject      TEXT    NOT NULL,     -- the user's e-mail, or the device id
    created_at   TEXT    NOT NULL,
    revoked      INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
