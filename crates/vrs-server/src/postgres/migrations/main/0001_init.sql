-- The same schema as the SQLite store (0001_init.sql, 0002_tokens.sql), in the
-- `vrs` schema. The big tables are partitioned by municipality code: every query is
-- scoped to one municipality, so it reads one partition.

CREATE TABLE vrs.municipalities (
    code             integer PRIMARY KEY,
    name             text    NOT NULL,
    transfer_contact text    NOT NULL DEFAULT ''
);

-- 接種対象者. No マイナンバー here (see the vrs_vault schema).
CREATE TABLE vrs.persons (
    municipality integer   NOT NULL,
    person_id    text      NOT NULL,
    family_name  text,
    given_name   text,
    family_kana  text,
    given_kana   text,
    birth_date   date,
    sex          smallint,
    voucher      bigint,
    status       text      NOT NULL DEFAULT 'active',
    updated_at   timestamp NOT NULL,
    PRIMARY KEY (municipality, person_id)
) PARTITION BY HASH (municipality);
CREATE TABLE vrs.persons_0 PARTITION OF vrs.persons FOR VALUES WITH (MODULUS 8, REMAINDER 0);
CREATE TABLE vrs.persons_1 PARTITION OF vrs.persons FOR VALUES WITH (MODULUS 8, REMAINDER 1);
CREATE TABLE vrs.persons_2 PARTITION OF vrs.persons FOR VALUES WITH (MODULUS 8, REMAINDER 2);
CREATE TABLE vrs.persons_3 PARTITION OF vrs.persons FOR VALUES WITH (MODULUS 8, REMAINDER 3);
CREATE TABLE vrs.persons_4 PARTITION OF vrs.persons FOR VALUES WITH (MODULUS 8, REMAINDER 4);
CREATE TABLE vrs.persons_5 PARTITION OF vrs.persons FOR VALUES WITH (MODULUS 8, REMAINDER 5);
CREATE TABLE vrs.persons_6 PARTITION OF vrs.persons FOR VALUES WITH (MODULUS 8, REMAINDER 6);
CREATE TABLE vrs.persons_7 PARTITION OF vrs.persons FOR VALUES WITH (MODULUS 8, REMAINDER 7);

-- The name look-up and dose matching go by (municipality, 券番号); a voucher
-- belongs to one person.
CREATE UNIQUE INDEX persons_by_voucher ON vrs.persons (municipality, voucher)
    WHERE voucher IS NOT NULL;

CREATE TABLE vrs.lots (
    vaccine text NOT NULL,
    lot     text NOT NULL,
    expiry  date NOT NULL,
    PRIMARY KEY (vaccine, lot)
);

CREATE TABLE vrs.sites (
    municipality integer NOT NULL,
    code         text    NOT NULL,
    name         text    NOT NULL,
    PRIMARY KEY (municipality, code)
);

-- 接種記録. `id` orders records by arrival; (municipality, client record id) makes
-- uploads idempotent.
CREATE TABLE vrs.doses (
    id                bigserial,
    municipality      integer   NOT NULL,
    client_record_id  uuid      NOT NULL,
    voucher           bigint    NOT NULL,
    voucher_kind      smallint,
    dose_number       smallint,
    vaccinated_on     date      NOT NULL,
    vaccine           text      NOT NULL,
    lot               text      NOT NULL,
    site_kind         text,
    site_code         text,
    site_municipality integer   NOT NULL,
    site_name         text      NOT NULL,
    doctor_name       text,
    device_id         text,
    source            text      NOT NULL,
    person_id         text,
    state             text      NOT NULL,
    hold_reason       text,
    hold_detail       text,
    registered_at     timestamp NOT NULL,
    revision          integer   NOT NULL DEFAULT 1,
    PRIMARY KEY (municipality, id),
    UNIQUE (municipality, client_record_id)
) PARTITION BY HASH (municipality);
CREATE TABLE vrs.doses_0 PARTITION OF vrs.doses FOR VALUES WITH (MODULUS 8, REMAINDER 0);
CREATE TABLE vrs.doses_1 PARTITION OF vrs.doses FOR VALUES WITH (MODULUS 8, REMAINDER 1);
CREATE TABLE vrs.doses_2 PARTITION OF vrs.doses FOR VALUES WITH (MODULUS 8, REMAINDER 2);
CREATE TABLE vrs.doses_3 PARTITION OF vrs.doses FOR VALUES WITH (MODULUS 8, REMAINDER 3);
CREATE TABLE vrs.doses_4 PARTITION OF vrs.doses FOR VALUES WITH (MODULUS 8, REMAINDER 4);
CREATE TABLE vrs.doses_5 PARTITION OF vrs.doses FOR VALUES WITH (MODULUS 8, REMAINDER 5);
CREATE TABLE vrs.doses_6 PARTITION OF vrs.doses FOR VALUES WITH (MODULUS 8, REMAINDER 6);
CREATE TABLE vrs.doses_7 PARTITION OF vrs.doses FOR VALUES WITH (MODULUS 8, REMAINDER 7);

-- Held records are matched later by voucher.
CREATE INDEX doses_by_voucher ON vrs.doses (municipality, voucher);
-- The checks and the transfer look-up read a person's doses.
CREATE INDEX doses_by_person ON vrs.doses (municipality, person_id);
-- The ledger export reads a date range.
CREATE INDEX doses_by_date ON vrs.doses (municipality, vaccinated_on);
-- The review queue lists held records.
CREATE INDEX doses_held ON vrs.doses (municipality, state) WHERE state = 'held';

CREATE TABLE vrs.dose_history (
    municipality     integer   NOT NULL,
    client_record_id uuid      NOT NULL,
    revision         integer   NOT NULL,
    changed_at       timestamp NOT NULL,
    actor            text      NOT NULL,
    reason           text      NOT NULL,
    before           text      NOT NULL,
    PRIMARY KEY (municipality, client_record_id, revision)
);

CREATE TABLE vrs.imports (
    id           bigserial PRIMARY KEY,
    municipality integer   NOT NULL,
    kind         text      NOT NULL,
    actor        text      NOT NULL,
    started_at   timestamp NOT NULL,
    outcome      text      NOT NULL,
    report       text      NOT NULL,
    errors_csv   text      NOT NULL
);
CREATE INDEX imports_by_municipality ON vrs.imports (municipality, id);

CREATE TABLE vrs.api_tokens (
    token_hash   bytea     PRIMARY KEY,
    kind         text      NOT NULL,
    municipality integer   NOT NULL,
    subject      text      NOT NULL,
    created_at   timestamp NOT NULL,
    revoked      boolean   NOT NULL DEFAULT false
);
