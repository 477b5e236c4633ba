-- The マイナンバー vault. Linked to a person only by (municipality, person_id).
CREATE TABLE my_numbers (
    municipality INTEGER NOT NULL,
    person_id    TEXT    NOT NULL,
    lookup       BLOB    NOT NULL,  -- HMAC-SHA256(lookup key, the 12 digits)
    nonce        BLOB    NOT NULL,  -- AES-256-GCM nonce, random per write
    sealed       BLOB    NOT NULL,  -- AES-256-GCM(vault key, digits), AAD = municipality|person
    PRIMARY KEY (municipality, person_id)
) WITHOUT ROWID;

-- The transfer look-up finds everyone with a number by its keyed hash.
CREATE INDEX my_numbers_by_lookup ON my_numbers (lookup);
