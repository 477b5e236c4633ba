-- Municipal users, contacts and sessions (mirrors 0004_access.sql of the embedded store).
CREATE TABLE vrs.users (
    email            text      PRIMARY KEY,
    municipality     integer   NOT NULL,
    team             text      NOT NULL,
    person           text      NOT NULL,
    phone            text      NOT NULL,
    transfer_contact boolean   NOT NULL,
    created_at       timestamp NOT NULL,
    passcode_hash    bytea,
    passcode_expires timestamp,
    passcode_sent    timestamp,
    failures         integer   NOT NULL DEFAULT 0,
    locked_until     timestamp
);
-- A municipality's user list.
CREATE INDEX users_by_municipality ON vrs.users (municipality);

CREATE TABLE vrs.contacts (
    municipality integer NOT NULL,
    kind         text    NOT NULL,
    team         text    NOT NULL,
    person       text    NOT NULL,
    phone        text    NOT NULL,
    email        text    NOT NULL,
    PRIMARY KEY (municipality, kind)
);

CREATE TABLE vrs.sessions (
    token_hash   bytea     PRIMARY KEY,
    municipality integer   NOT NULL,
    email        text      NOT NULL,
    csrf         text      NOT NULL,
    started      timestamp NOT NULL,
    last_seen    timestamp NOT NULL
);
-- A user's sessions end with the user.
CREATE INDEX sessions_by_email ON vrs.sessions (email);
