-- Every table is keyed by municipality code first: each query is scoped to one
-- municipality (the transfer look-up reads other municipalities' doses by key).

CREATE TABLE municipalities (
    code             INTEGER PRIMARY KEY,
    name             TEXT NOT NULL,
    -- 転出入連絡先: shown to other municipalities by the transfer look-up.
    transfer_contact TEXT NOT NULL DEFAULT ''
);

-- 接種対象者: the target-person register. No マイナンバー here (see the vault).
CREATE TABLE persons (
    municipality INTEGER NOT NULL,
    person_id    TEXT    NOT NULL,
    family_name  TEXT,
    given_name   TEXT,
    family_kana  TEXT,
    given_kana   TEXT,
    birth_date   TEXT,
    sex          INTEGER,
    voucher      INTEGER,
    status       TEXT    NOT NULL DEFAULT 'active',
    updated_at   TEXT    NOT NULL,
    PRIMARY KEY (municipality, person_id)
) WITHOUT ROWID;

-- The name look-up and dose matching go by (municipality, 券番号); a voucher
-- belongs to one person.
CREATE UNIQUE INDEX persons_by_voucher ON persons (municipality, voucher)
    WHERE voucher IS NOT NULL;

-- Lots the service knows, with their expiry, for the expired-lot check.
CREATE TABLE lots (
    vaccine TEXT NOT NULL,
    lot     TEXT NOT NULL,
    expiry  TEXT NOT NULL,
    PRIMARY KEY (vaccine, lot)
) WITHOUT ROWID;

-- Mass-vaccination sites and clinics, for the ledger's site name.
CREATE TABLE sites (
    municipality INTEGER NOT NULL,
    code         TEXT    NOT NULL,  -- site code, or the 10-digit clinic code
    name         TEXT    NOT NULL,
    PRIMARY KEY (municipality, code)
) WITHOUT ROWID;

-- 接種記録. A rowid table, so that new records append in arrival order (a random
-- UUID key would scatter every insert and every export read across the file); the
-- unique (municipality, client record id) makes uploads idempotent.
CREATE TABLE doses (
    id                INTEGER PRIMARY KEY,
    municipality      INTEGER NOT NULL,
    client_record_id  TEXT    NOT NULL,
    voucher           INTEGER NOT NULL,
    voucher_kind      INTEGER,
    dose_number       INTEGER,
    vaccinated_on     TEXT    NOT NULL,
    vaccine           TEXT    NOT NULL,
    lot               TEXT    NOT NULL,
    site_kind         TEXT,             -- 'clinic' | 'site' | NULL (paper)
    site_code         TEXT,
    site_municipality INTEGER NOT NULL,
    site_name         TEXT    NOT NULL,
    doctor_name       TEXT,
    device_id         TEXT,
    source            TEXT    NOT NULL, -- 'tablet' | 'paper'
    person_id         TEXT,             -- the matched person, when known
    state             TEXT    NOT NULL, -- 'accepted' | 'held' | 'voided'
    hold_reason       TEXT,
    hold_detail       TEXT,
    registered_at     TEXT    NOT NULL,
    revision          INTEGER NOT NULL DEFAULT 1,
    UNIQUE (municipality, client_record_id)
);

-- The checks read a person's earlier doses; held records are matched later by voucher.
CREATE INDEX doses_by_voucher ON doses (municipality, voucher);
-- The transfer look-up reads a person's doses.
CREATE INDEX doses_by_person ON doses (municipality, person_id);
-- The ledger export reads a date range.
CREATE INDEX doses_by_date ON doses (municipality, vaccinated_on);
-- The review queue lists held records.
CREATE INDEX doses_held ON doses (municipality, state) WHERE state = 'held';

-- Every change to a dose record after it arrived: voids and amendments, with why.
CREATE TABLE dose_history (
    municipality     INTEGER NOT NULL,
    client_record_id TEXT    NOT NULL,
    revision         INTEGER NOT NULL,
    changed_at       TEXT    NOT NULL,
    actor            TEXT    NOT NULL,
    reason           TEXT    NOT NULL,
    before           TEXT    NOT NULL,  -- the record as it was, JSON
    PRIMARY KEY (municipality, client_record_id, revision)
) WITHOUT ROWID;

-- Register imports: what each file did. The error list holds line, key, field and
-- problem, never a マイナンバー.
CREATE TABLE imports (
    id           INTEGER PRIMARY KEY,
    municipality INTEGER NOT NULL,
    kind         TEXT    NOT NULL,  -- 'register' | 'paper'
    actor        TEXT    NOT NULL,
    started_at   TEXT    NOT NULL,
    outcome      TEXT    NOT NULL,  -- 'applied' | 'rejected' | 'dry_run'
    report       TEXT    NOT NULL,  -- JSON counts and warnings
    errors_csv   TEXT    NOT NULL
);
CREATE INDEX imports_by_municipality ON imports (municipality, id);
