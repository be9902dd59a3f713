-- Anomaly models per area: which fitted artifact, on which points and training window, and in which mode.
-- A model starts in shadow (scored and recorded, no alarms) and raises alarms only once enabled; every mode
-- change is an event row here and an entry in the hash-chained audit record (core.audit).

CREATE TABLE detector_model (
    id               serial PRIMARY KEY,
    area_id          integer NOT NULL REFERENCES area (id),
    detector         text NOT NULL,
    -- name in the artifact store (detectors.artifacts); the envelope there holds library versions
    artifact         text NOT NULL UNIQUE,
    -- detectors.features.FeatureSpec as a dict; point keys resolve through point_ids (same order)
    feature_spec     jsonb NOT NULL,
    point_ids        integer[] NOT NULL,
    window_start     timestamptz NOT NULL,
    window_end       timestamptz NOT NULL,
    data_hash        text NOT NULL,
    n_rows           integer NOT NULL CHECK (n_rows > 0),
    params           jsonb NOT NULL DEFAULT '{}',
    mode             text NOT NULL DEFAULT 'shadow' CHECK (mode IN ('shadow', 'enabled', 'retired')),
    mode_changed_at  timestamptz NOT NULL DEFAULT now(),
    created_at       timestamptz NOT NULL DEFAULT now(),
    created_by       text NOT NULL,
    CHECK (window_start < window_end)
);
-- One enabled model per area: promoting another one demotes it first.
CREATE UNIQUE INDEX detector_model_one_enabled ON detector_model (area_id) WHERE mode = 'enabled';
CREATE INDEX detector_model_area_idx ON detector_model (area_id, mode);

CREATE TABLE detector_model_event (
    id         bigserial PRIMARY KEY,
    model_id   integer NOT NULL REFERENCES detector_model (id),
    at         timestamptz NOT NULL DEFAULT now(),
    actor      text NOT NULL,
    action     text NOT NULL CHECK (action IN ('register', 'promote', 'demote', 'rollback', 'retire')),
    from_mode  text,
    to_mode    text NOT NULL,
    reason     text NOT NULL DEFAULT ''
);
CREATE INDEX detector_model_event_model_idx ON detector_model_event (model_id, id);

-- Scores of shadow and enabled models, one row per model and closed grid step (what a model saw).
CREATE TABLE detector_score (
    model_id  integer NOT NULL,
    time      timestamptz NOT NULL,
    score     double precision NOT NULL,
    shadow    boolean NOT NULL,
    PRIMARY KEY (model_id, time)
);
CREATE INDEX detector_score_time_brin ON detector_score USING brin (time);

-- Changes of a model's classified severity, with the points that contributed most. Shadow findings are
-- recorded here only; enabled ones are also handed to the alarm engine.
CREATE TABLE detector_finding (
    id            bigserial PRIMARY KEY,
    model_id      integer NOT NULL REFERENCES detector_model (id),
    time          timestamptz NOT NULL,
    severity      smallint NOT NULL,
    score         double precision,
    shadow        boolean NOT NULL,
    contributors  jsonb NOT NULL DEFAULT '[]',
    batch_id      text
);
CREATE INDEX detector_finding_model_idx ON detector_finding (model_id, time);
