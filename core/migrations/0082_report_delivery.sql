-- Delivery of scheduled reports (reports/delivery.py): where each schedule sends its reports (notification
-- channels by name; "name:address" for an e-mail channel and a recipient), and one row per delivery attempt.

ALTER TABLE report_schedule ADD COLUMN deliver_to text[] NOT NULL DEFAULT '{}';

CREATE TABLE report_delivery (
    id          bigserial PRIMARY KEY,
    run_id      bigint NOT NULL REFERENCES report_run (id),
    target      text NOT NULL,                       -- channel name, or channel:address
    kind        text,                                -- the channel's kind
    status      text NOT NULL CHECK (status IN ('sent', 'failed')),
    error       text,
    at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX report_delivery_run_idx ON report_delivery (run_id);
