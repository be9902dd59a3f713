-- Notification intents, written in the same transaction as the alarm event that causes them; the notifier
-- (alerts worker) claims pending rows with FOR UPDATE SKIP LOCKED, sends, and records the outcome.

CREATE TABLE notification_outbox (
    id               bigserial PRIMARY KEY,
    created_at       timestamptz NOT NULL DEFAULT now(),
    kind             text NOT NULL CHECK (kind IN ('alarm', 'plan', 'flood', 'interlock', 'drill')),
    alarm_id         bigint REFERENCES alarm (id),
    alarm_event_id   bigint REFERENCES alarm_event (id),
    flood_id         bigint REFERENCES alarm_flood (id),
    command_id       uuid,
    site             text NOT NULL,
    area             text,
    priority         smallint,
    plan             text,                           -- site/area of the response plan, if one started
    plan_level       smallint,
    recipients       jsonb NOT NULL DEFAULT '{}',    -- {"roles": [...], "users": [...]}
    channels         jsonb NOT NULL DEFAULT '[]',    -- hints: wecom, dingtalk, feishu, sms, email, webpush
    title            text NOT NULL,
    title_en         text,
    body             text NOT NULL,
    body_en          text,
    evacuation       jsonb,                          -- {"zh", "en", "route", "route_en", "assembly_point", ...}
    drill            boolean NOT NULL DEFAULT false,
    status           text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sending', 'sent', 'failed',
                         'cancelled')),
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    sent_at          timestamptz,
    last_error       text
);
CREATE INDEX notification_outbox_pending_idx ON notification_outbox (next_attempt_at) WHERE status = 'pending';
CREATE INDEX notification_outbox_alarm_idx ON notification_outbox (alarm_id);
