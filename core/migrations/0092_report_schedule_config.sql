-- Report schedules from the plant file and the API (reports/config.py, reports/schedules.py): the local time a
-- period's report is due after the period ends, the grace after which a missing report is late (report.late), and
-- who keeps the schedule ('console', 'api' or 'config': applying a plant file disables the 'config' schedules it
-- no longer names and leaves the others alone).

ALTER TABLE report_schedule
    ADD COLUMN at_local time NOT NULL DEFAULT '00:00',
    ADD COLUMN grace interval NOT NULL DEFAULT '2 hours' CHECK (grace >= interval '0'),
    ADD COLUMN managed_by text NOT NULL DEFAULT 'console' CHECK (managed_by IN ('console', 'api', 'config')),
    ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();
