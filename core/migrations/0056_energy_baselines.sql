-- Energy baselines (ISO 50006) per meter or per area, as fitted and accepted by energy.baseline (ASHRAE Guideline
-- 14 figures kept beside the model). Re-baselining never edits a row: the new baseline supersedes the current one
-- (superseded_at / superseded_by) and both steps are written to the audit record with the reason
-- (energy.baseline_store). At most one current baseline per (site, meter or area, granularity).

CREATE TABLE energy_baseline (
    id             bigserial PRIMARY KEY,
    site_id        integer NOT NULL REFERENCES site (id),
    meter_id       integer REFERENCES meter (id),
    area_id        integer REFERENCES area (id),
    granularity    text NOT NULL CHECK (granularity IN ('monthly', 'daily', 'hourly')),
    model          jsonb NOT NULL,                      -- energy.baseline.Baseline.to_dict()
    variables      text[] NOT NULL,
    cv_rmse_pct    double precision NOT NULL,
    nmbe_pct       double precision NOT NULL,
    r2             double precision NOT NULL,
    n_periods      integer NOT NULL CHECK (n_periods > 0),
    period_start   timestamptz NOT NULL,
    period_end     timestamptz NOT NULL,
    reason         text NOT NULL CHECK (length(reason) > 0),   -- why (re-)baselined: new line, product mix...
    created_by     text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    superseded_at  timestamptz,
    superseded_by  bigint REFERENCES energy_baseline (id),
    CHECK ((meter_id IS NULL) <> (area_id IS NULL)),
    CHECK (period_start <= period_end),
    CHECK (superseded_by IS NULL OR superseded_at IS NOT NULL)
);
CREATE UNIQUE INDEX energy_baseline_current_idx
    ON energy_baseline (site_id, coalesce(meter_id, 0), coalesce(area_id, 0), granularity)
    WHERE superseded_at IS NULL;
