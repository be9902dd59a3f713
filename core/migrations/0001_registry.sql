-- The plant registry: sites, process areas, devices, points and meters (applied from the plant YAML).
-- Rows are never deleted: readings refer to points by id, so an item dropped from the configuration is
-- marked retired instead.

CREATE TABLE site (
    id          serial PRIMARY KEY,
    code        text NOT NULL UNIQUE CHECK (code ~ '^[a-z0-9][a-z0-9_-]*$'),
    name        text NOT NULL,
    name_en     text,
    timezone    text NOT NULL DEFAULT 'Asia/Shanghai',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE area (
    id            serial PRIMARY KEY,
    site_id       integer NOT NULL REFERENCES site (id),
    code          text NOT NULL CHECK (code ~ '^[a-z0-9][a-z0-9_-]*$'),
    name          text NOT NULL,
    name_en       text,
    process_type  text NOT NULL,
    retired_at    timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (site_id, code)
);

CREATE TABLE device (
    id          serial PRIMARY KEY,
    site_id     integer NOT NULL REFERENCES site (id),
    area_id     integer NOT NULL REFERENCES area (id),
    code        text NOT NULL CHECK (code ~ '^[a-z0-9][a-z0-9_-]*$'),
    name        text NOT NULL,
    name_en     text,
    kind        text NOT NULL,
    -- how often the device is expected to publish; silence for several intervals is a finding
    interval_s  double precision NOT NULL DEFAULT 10 CHECK (interval_s > 0),
    status      text NOT NULL DEFAULT 'unknown' CHECK (status IN ('online', 'offline', 'unknown')),
    status_at   timestamptz,
    retired_at  timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (site_id, code)
);
CREATE INDEX device_area_idx ON device (area_id);

CREATE TABLE point (
    id          serial PRIMARY KEY,
    device_id   integer NOT NULL REFERENCES device (id),
    key         text NOT NULL CHECK (key ~ '^[a-z][a-z0-9_]*$'),
    name        text NOT NULL,
    name_en     text,
    quantity    text NOT NULL,
    unit        text NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('gauge', 'counter')),
    -- instrument span: a value outside it is implausible and goes to the dead letters
    valid_min   double precision,
    valid_max   double precision,
    -- typical value (gauges) or typical increase per hour (counters)
    nominal     double precision,
    retired_at  timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (device_id, key),
    CHECK (valid_min IS NULL OR valid_max IS NULL OR valid_min < valid_max)
);

CREATE TABLE meter (
    id          serial PRIMARY KEY,
    site_id     integer NOT NULL REFERENCES site (id),
    code        text NOT NULL CHECK (code ~ '^[a-z0-9][a-z0-9_-]*$'),
    name        text NOT NULL,
    name_en     text,
    medium      text NOT NULL CHECK (medium IN
                    ('electricity', 'water', 'compressed_air', 'nitrogen', 'steam', 'natural_gas')),
    point_id    integer NOT NULL REFERENCES point (id),
    parent_id   integer REFERENCES meter (id),
    area_id     integer REFERENCES area (id),
    retired_at  timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (site_id, code),
    CHECK (parent_id IS NULL OR parent_id <> id)
);

-- One row per configuration apply that changed something: the audit trail of the registry.
CREATE TABLE config_revision (
    id          serial PRIMARY KEY,
    applied_at  timestamptz NOT NULL DEFAULT now(),
    source      text NOT NULL,
    sha256      text NOT NULL,
    summary     jsonb NOT NULL,
    applied_by  text NOT NULL DEFAULT current_user
);
