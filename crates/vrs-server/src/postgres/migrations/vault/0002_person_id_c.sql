-- As in the register (pg_0002): 個別宛名番号 compared byte for byte.
ALTER TABLE vrs_vault.my_numbers ALTER COLUMN person_id TYPE text COLLATE "C";
