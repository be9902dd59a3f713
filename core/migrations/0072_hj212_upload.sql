-- Upload to the authority's platform (the plant acting as an HJ 212 data logger): the persistent send queue,
-- which is also the record of every frame sent and answered, kept for the regulator's audit.

CREATE TABLE hj212_outbox (
    id           bigserial PRIMARY KEY,
    platform     text NOT NULL,
    cn           text NOT NULL,
    -- the start of the interval the frame reports (2051/2061/2031 DataTime), in UTC
    data_time    timestamptz NOT NULL,
    qn           text NOT NULL,
    frame        bytea NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    attempts     integer NOT NULL DEFAULT 0,
    sent_at      timestamptz,
    answered_at  timestamptz,
    -- why the frame was queued: 'scheduled', or 'history <request QN>' for a re-send the platform asked for
    reason       text NOT NULL DEFAULT 'scheduled'
);
CREATE INDEX hj212_outbox_pending_idx ON hj212_outbox (platform, id) WHERE answered_at IS NULL;
-- one frame (or one set of split packets, a QN each) per platform, command and interval
CREATE UNIQUE INDEX hj212_outbox_scheduled_idx ON hj212_outbox (platform, cn, data_time, qn)
    WHERE reason = 'scheduled';
