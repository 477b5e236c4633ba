-- Every index here starts with the municipality, and every query names one, so the
-- planner's estimate for "municipality = m" decides between the right index (the
-- one with the key) and a walk through all of m's rows. Its statistics lag: a
-- municipality whose first million people were just imported is "absent" until the
-- next ANALYZE, estimated at 1 row, and look-ups by voucher then walked all of them
-- for each key (9 municipalities of 1,000,000: an import slowed to minutes).
-- Without statistics for the column the planner assumes 1/200 of a partition, which
-- is about right (1,741 municipalities over 8 partitions) and never "absent".
ALTER TABLE vrs.persons ALTER COLUMN municipality SET STATISTICS 0;
ALTER TABLE vrs.doses ALTER COLUMN municipality SET STATISTICS 0;
