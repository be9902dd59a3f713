-- A dirty range may concern one rollup only: under TimescaleDB the part of a late range whose hourly bucket is
-- still open is kept for reading_1h alone, so that the minute aggregate is not refreshed again at every run.
-- NULL: both rollups.
ALTER TABLE rollup_dirty ADD COLUMN rollup text CHECK (rollup IN ('1m', '1h'));
