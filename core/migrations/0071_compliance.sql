-- Compliance: the plant file's outfalls section (versioned like the rule sets), the averaged values judged
-- against the limits, and where each evaluation stopped.

CREATE TABLE compliance_config (
    id          serial PRIMARY KEY,
    applied_at  timestamptz NOT NULL DEFAULT now(),
    source      text NOT NULL,
    sha256      text NOT NULL,
    body        jsonb NOT NULL
);

-- One row per closed averaging period (or per single reading judged against a single-reading limit):
-- the mean of valid data, how many values were valid, and the limit and its source at that time.
CREATE TABLE compliance_result (
    site_code     text NOT NULL,
    outfall       text NOT NULL,
    pollutant     text NOT NULL,
    averaging     text NOT NULL CHECK (averaging IN ('single', 'hour', 'day')),
    period_start  timestamptz NOT NULL,
    value         double precision,
    n_valid       integer NOT NULL,
    n_total       integer NOT NULL,
    valid         boolean NOT NULL,
    limit_min     double precision,
    limit_max     double precision,
    source        text NOT NULL,
    exceeded      boolean NOT NULL,
    computed_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (site_code, outfall, pollutant, averaging, period_start)
);

-- Per outfall, the time up to which samples have been evaluated (the job resumes from here).
CREATE TABLE compliance_watermark (
    site_code  text NOT NULL,
    outfall    text NOT NULL,
    evaluated_to  timestamptz NOT NULL,
    PRIMARY KEY (site_code, outfall)
);
