-- Output counters per process area (plant file ``areas[].production``): the energy refresh turns them into
-- ``energy_production`` rows per site-local day (source 'counter'), for energy per unit of output.
CREATE TABLE energy_production_point (
    area_id   integer NOT NULL REFERENCES area (id),
    point_id  integer NOT NULL REFERENCES point (id),
    PRIMARY KEY (area_id, point_id)
);

-- How far each output counter is turned into daily production (the time of the last reading used).
CREATE TABLE energy_production_state (
    point_id    integer PRIMARY KEY REFERENCES point (id),
    reading_to  timestamptz NOT NULL
);
