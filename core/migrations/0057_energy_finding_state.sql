-- The last severity of every energy check (rule, subject), so that the periodic evaluations report only changes
-- to the alarm engine (edge-triggered, STYLE.md B4), including the return to normal. The energy core (migration
-- 0051, issue #13, a parallel branch) creates the table for its balance and demand findings; this migration
-- creates the same table when it is absent and adds the figures of the abnormal-consumption decisions
-- (energy.abnormal_job), which the energy summary's "abnormal" list shows.

CREATE TABLE IF NOT EXISTS energy_finding_state (
    rule        text NOT NULL,
    subject     text NOT NULL,
    site        text NOT NULL,
    area        text,
    device      text,
    severity    smallint NOT NULL,
    message     text NOT NULL,
    since       timestamptz,
    updated_at  timestamptz NOT NULL,
    PRIMARY KEY (rule, subject)
);

ALTER TABLE energy_finding_state
    ADD COLUMN IF NOT EXISTS meter     text,
    ADD COLUMN IF NOT EXISTS expected  double precision,
    ADD COLUMN IF NOT EXISTS actual    double precision,
    ADD COLUMN IF NOT EXISTS unit      text;
