-- Readings, keyed on (point, time) so that a redelivered message is dropped, not stored twice.
-- No foreign key to point: a per-row lookup would slow COPY, and points are never deleted.

CREATE TABLE reading (
    time      timestamptz NOT NULL,
    point_id  integer NOT NULL,
    value     double precision,
    quality   smallint NOT NULL DEFAULT 0,
    PRIMARY KEY (point_id, time)
);

-- Rollup bookkeeping for plain PostgreSQL (TimescaleDB keeps its own invalidation log).
CREATE TABLE rollup_state (
    rollup     text PRIMARY KEY,
    watermark  timestamptz NOT NULL
);
CREATE TABLE rollup_dirty (
    id         bigserial PRIMARY KEY,
    from_time  timestamptz NOT NULL,
    to_time    timestamptz NOT NULL
);

-- With TimescaleDB: hypertable, compression and continuous aggregates (real-time, so the newest bucket is
-- computed from raw rows). Without it: a BRIN index on time and rollup tables of the same shape, filled by
-- core.timeseries.refresh_rollups. Either way readers query reading_1m / reading_1h the same way.
--
-- TimescaleDB is found from the catalog: already created in this database (by an administrator, for a role that
-- may not create it), or available and creatable here (a failed CREATE EXTENSION, e.g. the library is not
-- preloaded, falls back to plain PostgreSQL). current_setting('shared_preload_libraries') is not readable by a
-- normal role. The Apache-licensed build (timescaledb.license = apache) has hypertables but no compression and
-- no continuous aggregates: there the rollups are the plain tables. (Edited for new databases by issue 19:
-- yoyo keys migrations by id, so databases that applied the earlier text keep what it made.)
DO $body$
DECLARE
    have_ts boolean := EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb');
    community boolean;
BEGIN
    IF NOT have_ts AND EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb') THEN
        BEGIN
            CREATE EXTENSION IF NOT EXISTS timescaledb;
            have_ts := true;
        EXCEPTION WHEN OTHERS THEN
            RAISE NOTICE 'TimescaleDB is available but cannot be created here (%); plain PostgreSQL', SQLERRM;
        END;
    END IF;
    community := have_ts AND coalesce(current_setting('timescaledb.license', true), 'timescale') = 'timescale';
    IF have_ts THEN
        PERFORM create_hypertable('reading', 'time', chunk_time_interval => INTERVAL '1 day');
    ELSE
        CREATE INDEX reading_time_brin ON reading USING brin (time);
    END IF;
    IF community THEN
        ALTER TABLE reading SET (timescaledb.compress,
                                 timescaledb.compress_segmentby = 'point_id',
                                 timescaledb.compress_orderby = 'time DESC');
        EXECUTE 'CREATE MATERIALIZED VIEW reading_1m
                 WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
                 SELECT point_id, time_bucket(INTERVAL ''1 minute'', time) AS bucket,
                        min(value) AS value_min, max(value) AS value_max, avg(value) AS value_avg,
                        last(value, time) AS value_last, count(value) AS value_count
                 FROM reading GROUP BY point_id, bucket WITH NO DATA';
        EXECUTE 'CREATE MATERIALIZED VIEW reading_1h
                 WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
                 SELECT point_id, time_bucket(INTERVAL ''1 hour'', time) AS bucket,
                        min(value) AS value_min, max(value) AS value_max, avg(value) AS value_avg,
                        last(value, time) AS value_last, count(value) AS value_count
                 FROM reading GROUP BY point_id, bucket WITH NO DATA';
        PERFORM add_continuous_aggregate_policy('reading_1m', start_offset => INTERVAL '3 hours',
                end_offset => INTERVAL '1 minute', schedule_interval => INTERVAL '1 minute');
        PERFORM add_continuous_aggregate_policy('reading_1h', start_offset => INTERVAL '3 days',
                end_offset => INTERVAL '1 hour', schedule_interval => INTERVAL '30 minutes');
    ELSE
        CREATE TABLE reading_1m (
            point_id     integer NOT NULL,
            bucket       timestamptz NOT NULL,
            value_min    double precision,
            value_max    double precision,
            value_avg    double precision,
            value_last   double precision,
            value_count  bigint NOT NULL,
            PRIMARY KEY (point_id, bucket)
        );
        CREATE TABLE reading_1h (LIKE reading_1m INCLUDING ALL);
    END IF;
END
$body$;
