-- The access log (audit.rs): one hash chain per municipality (0: the service's).
CREATE TABLE vrs.audit_log (
    chain   bigint    NOT NULL,
    seq     bigint    NOT NULL,
    at      timestamp NOT NULL,
    actor   text      NOT NULL,
    action  text      NOT NULL,
    object  text      NOT NULL,
    outcome text      NOT NULL,
    prev    bytea     NOT NULL,
    hash    bytea     NOT NULL,
    PRIMARY KEY (chain, seq)
);
CREATE INDEX audit_log_by_time ON vrs.audit_log (chain, at);
-- Append-only: the service never changes or removes an entry (and the chain shows
-- it if anyone does).
CREATE FUNCTION vrs.audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the access log is append-only';
END $$;
CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON vrs.audit_log
    FOR EACH ROW EXECUTE FUNCTION vrs.audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON vrs.audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION vrs.audit_log_append_only();
