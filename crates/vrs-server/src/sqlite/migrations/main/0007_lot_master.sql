-- The lot master keeps each lot's GTIN, when known (it ties a scanned GS1 label to
-- the lot).
ALTER TABLE lots ADD COLUMN gtin TEXT;

-- A held record that its tablet corrected: the correction's client record id. The
-- record's state is then 'superseded' (it leaves the review queue and the ledger).
ALTER TABLE doses ADD COLUMN superseded_by TEXT;
