-- Notification delivery (alerts/notify.py, alerts/outbox.py): channels with sealed URLs, people's settings and
-- Web Push subscriptions, one delivery row per (outbox row, recipient, channel) with every attempt, escalation
-- policies and duty rosters as data, and the per-channel token buckets that keep providers' rate limits across
-- worker processes.

-- the outbox gains grouping (floods), reminders and escalations, and a claim lease
ALTER TABLE notification_outbox DROP CONSTRAINT notification_outbox_kind_check;
ALTER TABLE notification_outbox ADD CONSTRAINT notification_outbox_kind_check
    CHECK (kind IN ('alarm', 'plan', 'flood', 'interlock', 'drill', 'reminder', 'summary', 'test'));
ALTER TABLE notification_outbox DROP CONSTRAINT notification_outbox_status_check;
ALTER TABLE notification_outbox ADD CONSTRAINT notification_outbox_status_check
    CHECK (status IN ('pending', 'sending', 'sent', 'failed', 'cancelled', 'grouped'));
ALTER TABLE notification_outbox ADD COLUMN group_id bigint REFERENCES notification_outbox (id);
ALTER TABLE notification_outbox ADD COLUMN expanded_at timestamptz;

-- wake the notifier on commit of new intents (NOTIFY is delivered only if the inserting transaction commits)
CREATE FUNCTION notification_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('notification_outbox', '');
    RETURN NULL;
END $$;
CREATE TRIGGER notification_outbox_notify AFTER INSERT ON notification_outbox
    FOR EACH STATEMENT EXECUTE FUNCTION notification_outbox_notify();

-- A channel: a group bot (wecom, dingtalk, feishu), a person channel (email, sms, wecom_app: WeCom application
-- messages) or a webhook.
-- The apprise URL holds the provider's secrets: sealed (Fernet, key derived from EHS_SECRET_KEY), never logged,
-- never returned; url_redacted is what people see.
CREATE TABLE notification_channel (
    id             serial PRIMARY KEY,
    name           text NOT NULL UNIQUE,
    kind           text NOT NULL CHECK (kind IN ('wecom', 'wecom_app', 'dingtalk', 'feishu', 'email', 'sms',
                       'webhook', 'log')),
    url_sealed     bytea NOT NULL,
    url_redacted   text NOT NULL,
    site           text,                           -- null: every site
    area           text,                           -- null: every area of the site
    min_priority   smallint NOT NULL DEFAULT 1 CHECK (min_priority BETWEEN 1 AND 4),
    drills         boolean NOT NULL DEFAULT true,  -- may receive drill messages
    -- token bucket (providers' published limits, e.g. DingTalk robot 20/min): refill per second and burst
    rate_per_s     double precision NOT NULL DEFAULT 0.33 CHECK (rate_per_s > 0),
    burst          double precision NOT NULL DEFAULT 20 CHECK (burst >= 1),
    tokens         double precision NOT NULL DEFAULT 20,
    tokens_at      timestamptz NOT NULL DEFAULT now(),
    enabled        boolean NOT NULL DEFAULT true,
    failures       integer NOT NULL DEFAULT 0,     -- consecutive failed attempts
    failing_since  timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE notification_settings (
    user_id        integer PRIMARY KEY REFERENCES app_user (id) ON DELETE CASCADE,
    lang           text NOT NULL DEFAULT 'zh-CN' CHECK (lang IN ('zh-CN', 'en')),
    channels       jsonb NOT NULL DEFAULT '{"webpush": true, "email": true, "wecom": true, "dingtalk": true,
                       "feishu": true, "sms": true}',
    quiet_start    time,
    quiet_end      time,
    min_priority   smallint NOT NULL DEFAULT 1 CHECK (min_priority BETWEEN 1 AND 4),
    email          text,
    phone          text,
    wecom_user     text,                           -- WeCom userid, for application messages
    updated_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE push_subscription (
    id             bigserial PRIMARY KEY,
    user_id        integer NOT NULL REFERENCES app_user (id) ON DELETE CASCADE,
    endpoint       text NOT NULL UNIQUE,
    p256dh         text NOT NULL,
    auth           text NOT NULL,
    lang           text CHECK (lang IN ('zh-CN', 'en')),
    created_at     timestamptz NOT NULL DEFAULT now(),
    last_ok_at     timestamptz,
    gone_at        timestamptz                     -- the push service answered 404/410: never used again
);
CREATE INDEX push_subscription_user_idx ON push_subscription (user_id) WHERE gone_at IS NULL;

-- VAPID key pair of this installation (RFC 8292), generated once; the private key sealed like channel URLs
CREATE TABLE vapid_key (
    id             smallint PRIMARY KEY CHECK (id = 1),
    public_key     text NOT NULL,
    private_sealed bytea NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now()
);

-- One message to one recipient over one channel: the unit of idempotency.
CREATE TABLE notification_delivery (
    id             bigserial PRIMARY KEY,
    outbox_id      bigint NOT NULL REFERENCES notification_outbox (id),
    recipient      text NOT NULL,                  -- 'user:<id>' or 'group' (a group bot)
    channel        text NOT NULL,                  -- 'channel:<id>' or 'webpush:<subscription id>'
    user_id        integer REFERENCES app_user (id) ON DELETE SET NULL,
    channel_id     integer REFERENCES notification_channel (id) ON DELETE SET NULL,
    subscription_id bigint REFERENCES push_subscription (id) ON DELETE SET NULL,
    kind           text NOT NULL,                  -- channel kind or 'webpush'
    lang           text NOT NULL DEFAULT 'zh-CN',
    priority       smallint NOT NULL DEFAULT 1,
    status         text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sending', 'sent', 'failed',
                       'skipped')),
    attempts       integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    lease_until    timestamptz,                    -- a 'sending' row past its lease belongs to a dead worker
    claimed_by     text,
    sent_at        timestamptz,
    last_error     text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (outbox_id, recipient, channel)
);
CREATE INDEX notification_delivery_due_idx ON notification_delivery (priority DESC, next_attempt_at)
    WHERE status = 'pending';
CREATE INDEX notification_delivery_outbox_idx ON notification_delivery (outbox_id);
CREATE INDEX notification_delivery_lease_idx ON notification_delivery (lease_until) WHERE status = 'sending';

CREATE TABLE notification_attempt (
    id             bigserial PRIMARY KEY,
    delivery_id    bigint NOT NULL REFERENCES notification_delivery (id),
    started_at     timestamptz NOT NULL,
    finished_at    timestamptz,
    channel        text NOT NULL,
    target         text NOT NULL,                  -- redacted
    result         text NOT NULL CHECK (result IN ('ok', 'error', 'rate_limited', 'gone', 'lost')),
    error          text
);
CREATE INDEX notification_attempt_delivery_idx ON notification_attempt (delivery_id);

-- Escalation: tiers [{"after_s": 300, "roles": [...], "users": [...], "channels": [...]}] past the first
-- notification, reminders every reminder_s until acknowledged (at most max_reminders).
CREATE TABLE escalation_policy (
    id             serial PRIMARY KEY,
    name           text NOT NULL UNIQUE,
    site           text,
    area           text,
    min_priority   smallint NOT NULL DEFAULT 1 CHECK (min_priority BETWEEN 1 AND 4),
    tiers          jsonb NOT NULL DEFAULT '[]',
    reminder_s     double precision CHECK (reminder_s IS NULL OR reminder_s >= 60),
    max_reminders  integer NOT NULL DEFAULT 6 CHECK (max_reminders >= 0),
    enabled        boolean NOT NULL DEFAULT true,
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- Who holds a role now: shifts [{"name", "days": [1..7], "start": "08:00", "end": "20:00", "users": [...],
-- "on_call": [...]}], times in the roster's time zone; a shift may run past midnight.
CREATE TABLE duty_roster (
    id             serial PRIMARY KEY,
    name           text NOT NULL UNIQUE,
    site           text,
    area           text,
    role           text NOT NULL,
    tz             text NOT NULL DEFAULT 'Asia/Shanghai',
    shifts         jsonb NOT NULL DEFAULT '[]',
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- Escalation progress per alarm activation
CREATE TABLE alarm_escalation (
    alarm_id       bigint PRIMARY KEY REFERENCES alarm (id),
    activation_at  timestamptz NOT NULL,
    policy_id      integer REFERENCES escalation_policy (id) ON DELETE SET NULL,
    tiers_done     integer NOT NULL DEFAULT 0,
    reminders      integer NOT NULL DEFAULT 0,
    last_sent_at   timestamptz NOT NULL
);

-- Flood summaries: the last summary per flood, so one goes out per interval
CREATE TABLE notification_group (
    flood_id       bigint PRIMARY KEY REFERENCES alarm_flood (id),
    last_summary_at timestamptz,
    last_outbox_id bigint
);
