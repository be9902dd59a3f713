-- Rule sets and alarm configurations as applied from the plant file: every change is a new revision, kept
-- whole (body) with its digest, so an alarm names the exact rules that raised it (management of change).

CREATE TABLE rule_set (
    id          serial PRIMARY KEY,
    applied_at  timestamptz NOT NULL DEFAULT now(),
    source      text NOT NULL,
    sha256      text NOT NULL,
    body        jsonb NOT NULL,
    applied_by  text NOT NULL DEFAULT current_user
);

CREATE TABLE alarm_config (
    id          serial PRIMARY KEY,
    applied_at  timestamptz NOT NULL DEFAULT now(),
    source      text NOT NULL,
    sha256      text NOT NULL,
    body        jsonb NOT NULL,
    applied_by  text NOT NULL DEFAULT current_user
);
