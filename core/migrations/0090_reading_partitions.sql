-- Plain PostgreSQL: `reading` becomes a table partitioned by day (UTC), so that retention drops whole days
-- (core.storage.maintain) instead of deleting rows. Nothing changes where `reading` is a TimescaleDB hypertable.
--
-- The existing table is not copied: it is renamed `reading_before` and attached as the partition of everything
-- before the first daily partition (the day after its newest reading, or today), which needs one scan to find
-- that bound and one to validate it, and no rewrite; its primary key and BRIN index become the partition's.
-- It is dropped whole once its bound ages out of the retention. Columns are listed widest first in the new
-- parent (8 bytes a row less padding in new partitions); partitions may order their columns differently.
DO $body$
DECLARE
    is_hypertable boolean := false;
    newest timestamptz;
    first_day timestamptz;
    d timestamptz;
BEGIN
    IF to_regclass('_timescaledb_catalog.hypertable') IS NOT NULL THEN
        EXECUTE 'SELECT EXISTS (SELECT 1 FROM _timescaledb_catalog.hypertable
                                WHERE schema_name = current_schema() AND table_name = ''reading'')'
            INTO is_hypertable;
    END IF;
    IF is_hypertable OR (SELECT relkind FROM pg_class WHERE oid = 'reading'::regclass) = 'p' THEN
        RETURN;
    END IF;
    LOCK TABLE reading IN ACCESS EXCLUSIVE MODE;
    SELECT max(time) INTO newest FROM reading;
    first_day := date_trunc('day', now(), 'UTC');
    IF newest IS NOT NULL AND newest >= first_day THEN
        first_day := date_trunc('day', newest, 'UTC') + interval '1 day';
    END IF;

    ALTER TABLE reading RENAME TO reading_before;
    ALTER INDEX reading_pkey RENAME TO reading_before_pkey;
    ALTER INDEX reading_time_brin RENAME TO reading_before_time_brin;

    CREATE TABLE reading (
        time      timestamptz NOT NULL,
        value     double precision,
        point_id  integer NOT NULL,
        quality   smallint NOT NULL DEFAULT 0,
        PRIMARY KEY (point_id, time)
    ) PARTITION BY RANGE (time);
    CREATE INDEX reading_time_brin ON reading USING brin (time);
    COMMENT ON TABLE reading IS 'Readings keyed on (point, time); daily partitions on plain PostgreSQL';

    EXECUTE format('ALTER TABLE reading ATTACH PARTITION reading_before FOR VALUES FROM (MINVALUE) TO (%L)', first_day);
    -- today (or the first day after the old rows) and three days ahead; core.storage.maintain keeps this up
    d := first_day;
    WHILE d < greatest(first_day, date_trunc('day', now(), 'UTC')) + interval '4 days' LOOP
        EXECUTE format('CREATE TABLE %I PARTITION OF reading FOR VALUES FROM (%L) TO (%L)',
                       'reading_p' || to_char(d AT TIME ZONE 'UTC', 'YYYYMMDD'), d, d + interval '1 day');
        d := d + interval '1 day';
    END LOOP;
END
$body$;
