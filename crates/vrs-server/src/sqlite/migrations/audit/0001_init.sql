-- The access log (audit.rs): one hash chain per municipality (0: the service's).
CREATE TABLE audit_log (
    chain   INTEGER NOT NULL,
    seq     INTEGER NOT NULL,
    at      TEXT    NOT NULL,
    actor   TEXT    NOT NULL,
    action  TEXT    NOT NULL,
    object  TEXT    NOT NULL,
    outcome TEXT    NOT NULL,
    prev    BLOB    NOT NULL,
    hash    BLOB    NOT NULL,
    PRIMARY KEY (chain, seq)
) WITHOUT ROWID;
CREATE INDEX audit_log_by_time ON audit_log (chain, at);
-- Append-only: the service never changes or removes an entry (and the chain shows
-- it if anyone does).
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the access log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the access log is append-only'); END;
