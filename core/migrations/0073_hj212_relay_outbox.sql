-- The HJ 212 listener's relay outbox (issue 15): the telemetry messages that carry a frame's relayable readings
-- to the ingest process owning the site are written in the same transaction as the readings, and a relay loop
-- publishes them (MQTT QoS 1) and marks them sent once the broker has confirmed (PUBACK). A crash, a restart or
-- a broker outage between the commit and the publish leaves the rows unsent, and they go out later.
CREATE TABLE hj212_relay_outbox (
    id          bigserial PRIMARY KEY,
    site        text NOT NULL,
    device      text NOT NULL,
    topic       text NOT NULL,
    -- the contract's telemetry payload, as published: [{"ts": epoch ms, "values": {point key: value}}, ...]
    payload     bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    sent_at     timestamptz,
    attempts    integer NOT NULL DEFAULT 0,
    last_error  text
);
CREATE INDEX hj212_relay_outbox_unsent_idx ON hj212_relay_outbox (id) WHERE sent_at IS NULL;
-- retention deletes sent rows older than a number of days
CREATE INDEX hj212_relay_outbox_sent_idx ON hj212_relay_outbox (sent_at) WHERE sent_at IS NOT NULL;
