-- Report schedules from the plant file and the API (reports/config.py, reports/schedules.py): the local time a
-- period's report is due after the period ends, the grace after which a missing report is late (report.late), and
-- who keeps the schedule ('console', 'api' or 'config': applying a plant file disables the 'config' schedules it
-- no longer names and leaves the others alone).

ALTER TABLE report_schedule
    ADD COLUMN at_local time NOT NULL DEFAULT '00:00',
    ADD COLUMN grace interval NOT NULL DEFAULT '2 hours' CHECK (grace >= interval '0'),
    ADD COLUMN managed_by text NOT NULL DEFAULT 'console' CHECK (managed_by IN ('console', 'api', 'config')),
    ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();

-- Delivery of reports through the notification outbox (reports/delivery.py enqueues, alerts/notifications sends):
-- an outbox row of kind 'report' names its targets explicitly (channel by name, an address for e-mail, the title
-- and body for that target: chat channels get signed download links, e-mail the files), and carries the files
-- to attach; each target becomes a delivery with the outbox's retries, leases, rate limits and channel health.
ALTER TABLE notification_outbox DROP CONSTRAINT notification_outbox_kind_check;
ALTER TABLE notification_outbox ADD CONSTRAINT notification_outbox_kind_check
    CHECK (kind IN ('alarm', 'plan', 'flood', 'interlock', 'drill', 'reminder', 'summary', 'test', 'report'));
ALTER TABLE notification_outbox ADD COLUMN targets jsonb;   -- [{"channel", "to", "title", "body"}], kind 'report'
ALTER TABLE notification_delivery ADD COLUMN address text;  -- the target's address (e-mail), when it names one

CREATE TABLE notification_attachment (
    id          bigserial PRIMARY KEY,
    outbox_id   bigint NOT NULL REFERENCES notification_outbox (id),
    filename    text NOT NULL,
    media_type  text NOT NULL,
    sha256      text NOT NULL,
    content     bytea NOT NULL
);
CREATE INDEX notification_attachment_outbox_idx ON notification_attachment (outbox_id);

ALTER TABLE report_delivery ADD COLUMN outbox_id bigint REFERENCES notification_outbox (id);
ALTER TABLE report_delivery DROP CONSTRAINT report_delivery_status_check;
ALTER TABLE report_delivery ADD CONSTRAINT report_delivery_status_check CHECK (status IN ('queued', 'sent', 'failed'));

-- The device-health report counts readings from the hourly rollup, and the null readings (no value: the rollups
-- do not count them) through this small partial index instead of a scan of every reading of the period.
CREATE INDEX IF NOT EXISTS reading_null_value_idx ON reading (point_id, time) WHERE value IS NULL;
