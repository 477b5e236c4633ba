-- The look-up hashes in a table of their own, keyed by the hash, instead of an index
-- on my_numbers: an import then writes each B-tree in its own key order (people by
-- 個別宛名番号, hashes by hash), in large sorted batches. Into one index the hashes
-- came in random order, and once the index outgrew the page cache every number
-- cost a page read and a page write (a first load of 3,700,000 people: 71 s, of
-- which most was the vault).
CREATE TABLE my_number_lookups (
    lookup       BLOB    NOT NULL,
    municipality INTEGER NOT NULL,
    person_id    TEXT    NOT NULL,
    PRIMARY KEY (lookup, municipality, person_id)
) WITHOUT ROWID;

INSERT INTO my_number_lookups (lookup, municipality, person_id)
    SELECT lookup, municipality, person_id FROM my_numbers ORDER BY lookup, municipality, person_id;

DROP INDEX my_numbers_by_lookup;
