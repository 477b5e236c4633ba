-- The マイナンバー vault, in its own schema (own it, and connect to it, with its own
-- role: the service's main role needs no privilege here). Linked to a person only
-- by (municipality, person_id).
CREATE TABLE vrs_vault.my_numbers (
    municipality integer NOT NULL,
    person_id    text    NOT NULL,
    lookup       bytea   NOT NULL,  -- HMAC-SHA256(lookup key, the 12 digits)
    nonce        bytea   NOT NULL,  -- AES-256-GCM nonce, random per write
    sealed       bytea   NOT NULL,  -- AES-256-GCM(vault key, digits), AAD = municipality|person
    PRIMARY KEY (municipality, person_id)
);
-- The transfer look-up finds everyone with a number by its keyed hash.
CREATE INDEX my_numbers_by_lookup ON vrs_vault.my_numbers (lookup);
