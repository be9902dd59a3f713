-- Report schedules (reports/schedules.py): a report kind for a site, made every day, week or month for the period
-- that just ended (in the site's time zone), or after each incident once it is closed. One slot per (schedule,
-- period or incident) makes the run unique across several alerts workers; a slot whose run failed, or stalled
-- past its lease, is run again (at least once), up to a number of attempts.

CREATE TABLE report_schedule (
    id          serial PRIMARY KEY,
    name        text NOT NULL UNIQUE CHECK (name ~ '^[a-z0-9][a-z0-9_.-]*$'),
    kind        text NOT NULL,
    site        text NOT NULL,
    areas       text[],
    every       text NOT NULL CHECK (every IN ('daily', 'weekly', 'monthly', 'incident')),
    formats     text[] NOT NULL,
    lang        text NOT NULL DEFAULT 'zh-CN',
    enabled     boolean NOT NULL DEFAULT true,
    created_by  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE report_schedule_slot (
    schedule_id  integer NOT NULL REFERENCES report_schedule (id) ON DELETE CASCADE,
    key          text NOT NULL,                      -- the period's start (ISO 8601), or alarm:<id> / flood:<id>
    run_id       bigint REFERENCES report_run (id),
    attempts     integer NOT NULL DEFAULT 0,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (schedule_id, key)
);
