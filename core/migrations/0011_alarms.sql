-- Alarms (ISA-18.2 / IEC 62682, standards.md section 1): one row per episode of one (rule, source), open from
-- the first departure from normal until the alarm is back to normal (acknowledged, reset, unshelved...), and an
-- append-only event per transition with actor, cause and the id of what caused it.

CREATE TABLE alarm_flood (
    id              bigserial PRIMARY KEY,
    site            text NOT NULL,
    area            text NOT NULL,
    started_at      timestamptz NOT NULL,
    ended_at        timestamptz,
    alarm_count     integer NOT NULL DEFAULT 0,
    peak_per_window integer NOT NULL DEFAULT 0,
    first_alarm_id  bigint,
    drill           boolean NOT NULL DEFAULT false
);
-- at most one flood in progress per area
CREATE UNIQUE INDEX alarm_flood_open ON alarm_flood (site, area) WHERE ended_at IS NULL;

CREATE TABLE alarm (
    id                bigserial PRIMARY KEY,
    rule              text NOT NULL,
    source            text NOT NULL,                 -- subject key: site/area/device/point
    site              text NOT NULL,
    area              text,
    device            text,
    point             text,
    rule_type         text,
    detector          text,
    rule_revision     integer,
    title             text NOT NULL,
    title_en          text,
    state             text NOT NULL CHECK (state IN ('normal', 'active_unacked', 'active_acked', 'cleared_unacked',
                          'latched_unacked', 'latched_acked', 'shelved', 'suppressed', 'out_of_service')),
    condition_active  boolean NOT NULL DEFAULT false,
    severity          smallint NOT NULL DEFAULT 0 CHECK (severity BETWEEN 0 AND 4),   -- now; 0 = normal
    priority          smallint NOT NULL DEFAULT 1 CHECK (priority BETWEEN 1 AND 4),   -- highest this episode
    latching          boolean NOT NULL DEFAULT false,
    alarm_class       text NOT NULL DEFAULT 'process',
    level             text,                          -- the limit reached, e.g. 'HH 60'
    value             double precision,
    message           text NOT NULL DEFAULT '',
    raised_at         timestamptz,                   -- first activation of this episode
    last_raised_at    timestamptz,
    cleared_at        timestamptz,
    activations       integer NOT NULL DEFAULT 0,
    acked_at          timestamptz,
    acked_by          text,
    shelved_until     timestamptz,
    shelved_by        text,
    shelve_reason     text,
    oos_by            text,
    oos_reason        text,
    oos_permit        text,
    suppressed_by     bigint REFERENCES alarm (id),
    first_out         boolean NOT NULL DEFAULT false,
    chattering        boolean NOT NULL DEFAULT false,
    flood_id          bigint REFERENCES alarm_flood (id),
    plan_level        smallint,
    drill             boolean NOT NULL DEFAULT false,
    first_finding_id  text,
    opened_at         timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    closed_at         timestamptz,
    CHECK ((state = 'normal') = (closed_at IS NOT NULL))
);
-- one open alarm per (rule, source), enforced here and not only by the code
CREATE UNIQUE INDEX alarm_one_open ON alarm (rule, source) WHERE closed_at IS NULL;
CREATE INDEX alarm_open_area_idx ON alarm (site, area) WHERE closed_at IS NULL;
CREATE INDEX alarm_opened_idx ON alarm (opened_at);
ALTER TABLE alarm_flood ADD FOREIGN KEY (first_alarm_id) REFERENCES alarm (id);

CREATE TABLE alarm_event (
    id           bigserial PRIMARY KEY,
    alarm_id     bigint NOT NULL REFERENCES alarm (id),
    at           timestamptz NOT NULL,                -- when it happened (a finding's time, or the action's)
    recorded_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    kind         text NOT NULL,                      -- a lifecycle event, or comment / chattering / flood / command
    from_state   text,
    to_state     text,
    severity     smallint,
    priority     smallint,
    value        double precision,
    actor        text NOT NULL,                      -- a person, or system:<service>
    cause        text,                               -- the reason, comment or message
    caused_by    text,                               -- finding id, command id, alarm id of a cause ...
    batch_id     text,
    annunciated  boolean NOT NULL DEFAULT false,     -- presented to operators by this event (KPIs, floods)
    drill        boolean NOT NULL DEFAULT false,
    rule         text NOT NULL,
    source       text NOT NULL,
    site         text NOT NULL,
    area         text,
    detail       jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX alarm_event_alarm_idx ON alarm_event (alarm_id, id);
CREATE INDEX alarm_event_annunciated_idx ON alarm_event (site, area, at) WHERE annunciated;
CREATE INDEX alarm_event_raise_idx ON alarm_event (rule, source, at) WHERE kind = 'raise';
CREATE INDEX alarm_event_at_idx ON alarm_event (at);

-- Event tables of the alarm record are append-only (for any table this trigger is attached to).
CREATE FUNCTION refuse_rewrite() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only (% refused)', TG_TABLE_NAME, TG_OP;
END
$$;
CREATE TRIGGER alarm_event_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON alarm_event
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_rewrite();

-- Findings the alarm record could not take (a bug, a constraint): kept whole, never dropped silently.
CREATE TABLE finding_dead_letter (
    id        bigserial PRIMARY KEY,
    at        timestamptz NOT NULL DEFAULT now(),
    batch_id  text,
    finding   jsonb NOT NULL,
    error     text NOT NULL
);

-- How far each consumer has published alarm events (the MQTT alarms topic is fed from alarm_event).
CREATE TABLE alarm_publish_cursor (
    name           text PRIMARY KEY,
    last_event_id  bigint NOT NULL DEFAULT 0
);
