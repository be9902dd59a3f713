-- Energy (issue 13): 15-minute interval energy from meter counters, meter events, virtual meters, the refresh
-- bookkeeping, production output and offline (manually read) counter imports with their audit record.

-- Virtual meters: a formula of sums and differences of other meters instead of a counter point.
ALTER TABLE meter ALTER COLUMN point_id DROP NOT NULL;
ALTER TABLE meter ADD COLUMN formula text;
ALTER TABLE meter ADD CONSTRAINT meter_point_or_formula CHECK ((point_id IS NULL) <> (formula IS NULL));

-- Energy per meter and 15-minute interval (UTC-aligned start), in the meter medium's unit (energy.units).
-- band and cost_cny are the time-of-use band and the energy cost of the interval under the tariff valid then
-- (NULL without a tariff); recomputed with the interval. No foreign key to meter, like ``reading``: the per-row
-- check made the backfill COPY four times slower (measured), and meters are never deleted, only retired.
CREATE TABLE energy_interval (
    meter_id  integer NOT NULL,
    start     timestamptz NOT NULL,            -- aligned by energy.intervals (a CHECK cost 10% of the backfill)
    quantity  double precision NOT NULL CHECK (quantity >= 0),
    quality   text NOT NULL CHECK (quality IN ('measured', 'estimated', 'missing')),
    band      text CHECK (band IN ('critical', 'peak', 'flat', 'valley')),
    cost_cny  double precision,
    PRIMARY KEY (meter_id, start)
);

-- Energy per meter and site-local day (the site's time zone), made from the intervals by the same refresh: the
-- day, month and year ledgers read it. Per-band quantities give the peak/flat/valley shares.
CREATE TABLE energy_day (
    meter_id     integer NOT NULL REFERENCES meter (id),
    day          date NOT NULL,
    quantity     double precision NOT NULL,
    cost_cny     double precision,
    q_critical   double precision NOT NULL DEFAULT 0,
    q_peak       double precision NOT NULL DEFAULT 0,
    q_flat       double precision NOT NULL DEFAULT 0,
    q_valley     double precision NOT NULL DEFAULT 0,
    max_15min    double precision NOT NULL DEFAULT 0,     -- largest interval of the day (demand = 4 x this, kW)
    measured     integer NOT NULL,
    estimated    integer NOT NULL,
    missing      integer NOT NULL,
    PRIMARY KEY (meter_id, day)
);

-- The same per site-local month (``day`` is the first of the month), for the month and year ledgers.
CREATE TABLE energy_month (LIKE energy_day INCLUDING ALL);

-- Counter events: detected (rollover past the instrument span, reset to zero, implausible jump) or recorded by
-- the energy manager (replacement with the old meter's final and the new meter's first reading). Ledgers never
-- show a negative or a giant spike: the delta across an event is computed from these.
CREATE TABLE meter_event (
    id           bigserial PRIMARY KEY,
    meter_id     integer NOT NULL REFERENCES meter (id),
    time         timestamptz NOT NULL,
    kind         text NOT NULL CHECK (kind IN ('rollover', 'reset', 'jump', 'replacement')),
    before       double precision,          -- counter before the event (old meter's final reading)
    after        double precision,          -- counter after the event (new meter's first reading)
    delta_used   double precision,          -- the energy the interval computation assigned across the event
    note         text NOT NULL DEFAULT '',
    recorded_by  text NOT NULL DEFAULT 'system',
    recorded_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (meter_id, time, kind)
);

-- How far each meter's intervals are computed (the time of the last reading used).
CREATE TABLE energy_state (
    meter_id    integer PRIMARY KEY REFERENCES meter (id),
    reading_to  timestamptz NOT NULL
);

-- Late readings: every range the writer marks dirty for the rollups is also dirty for energy (a trigger, so the
-- ingest path needs no change); energy.intervals.refresh consumes these rows. Ranges that the TimescaleDB path
-- re-queues for one rollup only (rollup IS NOT NULL) were already copied when first inserted.
CREATE TABLE energy_dirty (
    id         bigserial PRIMARY KEY,
    from_time  timestamptz NOT NULL,
    to_time    timestamptz NOT NULL,
    point_ids  integer[]
);

CREATE FUNCTION energy_copy_dirty() RETURNS trigger LANGUAGE plpgsql AS $body$
BEGIN
    -- rollup_dirty gains its rollup column in a later migration (0091): read it by name, absent = NULL
    IF to_jsonb(NEW) ->> 'rollup' IS NULL THEN
        INSERT INTO energy_dirty (from_time, to_time, point_ids)
        VALUES (NEW.from_time, NEW.to_time, 
                CASE WHEN jsonb_typeof(to_jsonb(NEW) -> 'point_ids') = 'array' THEN   -- NULL: every point
                    ARRAY(SELECT jsonb_array_elements_text(to_jsonb(NEW) -> 'point_ids')::integer) END);
    END IF;
    RETURN NEW;
END
$body$;

CREATE TRIGGER rollup_dirty_energy AFTER INSERT ON rollup_dirty
    FOR EACH ROW EXECUTE FUNCTION energy_copy_dirty();

-- Production output per area and period (from the API/CSV, or from counter points by the energy refresh).
CREATE TABLE energy_production (
    id           bigserial PRIMARY KEY,
    area_id      integer NOT NULL REFERENCES area (id),
    start        timestamptz NOT NULL,
    "end"        timestamptz NOT NULL,
    quantity     double precision NOT NULL CHECK (quantity >= 0),
    unit         text NOT NULL CHECK (unit IN ('cells', 'packs', 'ah', 'kwh', 'pcs', 't')),
    source       text NOT NULL CHECK (source IN ('api', 'csv', 'counter')),
    recorded_by  text NOT NULL,
    recorded_at  timestamptz NOT NULL DEFAULT now(),
    CHECK ("end" > start),
    UNIQUE (area_id, start, "end", unit)
);

-- Offline meters: manually read or historical counter values imported from CSV/XLSX. The readings themselves
-- go into ``reading`` (quality 0, like any reading) so that one interval computation serves; this is the audit record.
CREATE TABLE energy_offline_import (
    id           bigserial PRIMARY KEY,
    site_id      integer NOT NULL REFERENCES site (id),
    filename     text NOT NULL,
    sha256       text NOT NULL,
    rows         integer NOT NULL,
    meters       text[] NOT NULL,
    first_time   timestamptz,
    last_time    timestamptz,
    imported_by  text NOT NULL,
    imported_at  timestamptz NOT NULL DEFAULT now()
);
