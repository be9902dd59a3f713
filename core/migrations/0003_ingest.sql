-- What ingest keeps besides readings: rejected input, device status history, service heartbeats.

-- Every rejected message, with the raw payload (truncated only beyond the oversize cap) and its reason.
CREATE TABLE dead_letter (
    id            bigserial PRIMARY KEY,
    received_at   timestamptz NOT NULL,
    topic         text NOT NULL,
    payload       bytea NOT NULL,
    payload_size  integer NOT NULL,
    reason        text NOT NULL,
    detail        text NOT NULL DEFAULT '',
    site_code     text,
    device_code   text
);
CREATE INDEX dead_letter_received_idx ON dead_letter (received_at);
CREATE INDEX dead_letter_reason_idx ON dead_letter (reason, received_at);

-- Device status from the retained .../status topic (online / offline, the device's last will).
CREATE TABLE device_status_event (
    device_id  integer NOT NULL REFERENCES device (id),
    time       timestamptz NOT NULL,
    status     text NOT NULL CHECK (status IN ('online', 'offline')),
    PRIMARY KEY (device_id, time)
);

-- Each long-running process reports its counters here every few seconds (read by /readyz and the API).
CREATE TABLE service_heartbeat (
    service     text NOT NULL,
    instance    text NOT NULL,
    started_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    counters    jsonb NOT NULL DEFAULT '{}',
    PRIMARY KEY (service, instance)
);
