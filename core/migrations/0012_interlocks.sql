-- Interlock commands to actuators (MQTT .../cmd, ARCHITECTURE.md), their acknowledgements, and bypasses.
-- Automatic commands are published by ingest before their row exists, so an acknowledgement may arrive first:
-- command events therefore have no foreign key, and the alerts worker reconciles.

CREATE TABLE interlock_command (
    id              uuid PRIMARY KEY,
    site            text NOT NULL,
    area            text,
    device          text NOT NULL,
    action          text NOT NULL,
    params          jsonb NOT NULL DEFAULT '{}',
    origin          text NOT NULL CHECK (origin IN ('auto', 'manual', 'drill')),
    drill           boolean NOT NULL DEFAULT false,
    status          text NOT NULL CHECK (status IN ('pending', 'issued', 'accepted', 'done', 'rejected', 'failed',
                        'timed_out', 'skipped', 'cancelled')),
    payload         jsonb,                           -- the signed payload as sent; a retry sends it again as is
    issued_at       timestamptz,
    expires_at      timestamptz,
    accept_by       timestamptz,
    done_by         timestamptz,
    attempts        integer NOT NULL DEFAULT 0,
    max_attempts    integer NOT NULL DEFAULT 3,
    accept_within_s double precision NOT NULL DEFAULT 5,
    done_within_s   double precision NOT NULL DEFAULT 30,
    alarm_id        bigint REFERENCES alarm (id),
    alarm_event_id  bigint REFERENCES alarm_event (id),
    finding_id      text,
    batch_id        text,
    plan            text,
    plan_level      smallint,
    requested_by    text NOT NULL,
    reason          text NOT NULL DEFAULT '',
    detail          text NOT NULL DEFAULT '',
    device_state    jsonb,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz
);
CREATE INDEX interlock_command_open_idx ON interlock_command (status, created_at)
    WHERE status IN ('pending', 'issued', 'accepted');
CREATE INDEX interlock_command_alarm_idx ON interlock_command (alarm_id);
CREATE INDEX interlock_command_device_idx ON interlock_command (site, device, created_at);

CREATE TABLE interlock_command_event (
    id          bigserial PRIMARY KEY,
    command_id  uuid NOT NULL,
    at          timestamptz NOT NULL,
    status      text NOT NULL,
    detail      text NOT NULL DEFAULT '',
    state       jsonb,
    actor       text NOT NULL
);
CREATE INDEX interlock_command_event_idx ON interlock_command_event (command_id, id);
CREATE TRIGGER interlock_command_event_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON interlock_command_event
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_rewrite();

-- Bypassing an interlock needs two different people and expires (checked here as well as in the code).
CREATE TABLE interlock_bypass (
    id            bigserial PRIMARY KEY,
    site          text NOT NULL,
    device        text NOT NULL,
    action        text,                              -- null: every action of the device
    reason        text NOT NULL CHECK (length(btrim(reason)) > 0),
    duration_s    integer NOT NULL CHECK (duration_s > 0),
    requested_by  text NOT NULL,
    requested_at  timestamptz NOT NULL,
    approved_by   text,
    approved_at   timestamptz,
    expires_at    timestamptz,
    revoked_by    text,
    revoked_at    timestamptz,
    CHECK (approved_by IS NULL OR approved_by <> requested_by),
    CHECK ((approved_by IS NULL) = (expires_at IS NULL))
);
