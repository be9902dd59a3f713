-- The last severity of every abnormal-consumption check (rule, subject), so that energy.abnormal_job reports only
-- changes to the alarm engine (edge-triggered, STYLE.md B4), including the return to normal, and keeps the figures of what is abnormal now.

CREATE TABLE energy_finding_state (
    rule        text NOT NULL,
    subject     text NOT NULL,
    site        text NOT NULL,
    area        text,
    device      text,
    meter       text,
    severity    smallint NOT NULL CHECK (severity BETWEEN 0 AND 4),
    message     text NOT NULL DEFAULT '',
    -- the decision's figures while abnormal (for the energy summary's "abnormal" list)
    expected    double precision,
    actual      double precision,
    unit        text,
    since       timestamptz,
    updated_at  timestamptz NOT NULL,
    PRIMARY KEY (rule, subject)
);
