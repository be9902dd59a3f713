-- Hazardous waste (standards.md section 4): catalogue of waste types per site, storage facilities, containers,
-- the HJ 1259-2022 ledger (one row per container or package and stage, append-only: corrections are new rows),
-- electronic transfer manifests with their event record, declarations, and the compliance findings' last state.

CREATE TABLE hw_site_setting (
    site_id             integer PRIMARY KEY REFERENCES site (id),
    storage_limit_days  integer NOT NULL DEFAULT 365 CHECK (storage_limit_days > 0),   -- Solid Waste Law Art. 81
    warn_days           integer[] NOT NULL DEFAULT '{270,330}',
    unit_class          text NOT NULL DEFAULT 'key' CHECK (unit_class IN ('key', 'simplified', 'registration')),
    producer_name       text,
    producer_contact    text,
    updated_at          timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE hw_waste_type (
    id                 serial PRIMARY KEY,
    site_id            integer NOT NULL REFERENCES site (id),
    code               text NOT NULL CHECK (code ~ '^[a-z0-9][a-z0-9_-]*$'),    -- the plant's own code
    name               text NOT NULL,                                           -- trade or internal name
    list_name          text NOT NULL,                                           -- the name in the 名录
    list_edition       smallint NOT NULL CHECK (list_edition IN (2021, 2025)),
    waste_code         text NOT NULL CHECK (waste_code ~ '^[0-9]{3}-[0-9]{3}-[0-9]{2}$'),
    category           text NOT NULL CHECK (category ~ '^HW[0-9]{2}$'),
    hazards            text[] NOT NULL,
    form               text NOT NULL,
    constituents       text NOT NULL DEFAULT '',
    precautions        text NOT NULL DEFAULT '',
    incompatible_with  text[] NOT NULL DEFAULT '{}',                            -- codes of other waste types
    processes          text[] NOT NULL DEFAULT '{}',
    retired_at         timestamptz,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    UNIQUE (site_id, code),
    CHECK (substr(waste_code, 9, 2) = substr(category, 3, 2))
);

CREATE TABLE hw_facility (
    id           serial PRIMARY KEY,
    site_id      integer NOT NULL REFERENCES site (id),
    code         text NOT NULL CHECK (code ~ '^[A-Za-z0-9][A-Za-z0-9_-]*$'),
    name         text NOT NULL,
    -- GB 18597-2023 storage types, a small storage point, and where waste is generated or treated on site
    kind         text NOT NULL CHECK (kind IN ('warehouse', 'yard', 'pit', 'tank_farm', 'storage_point',
                                               'generation', 'own_treatment')),
    capacity_kg  double precision CHECK (capacity_kg > 0),
    area         text,                                     -- area code of the plant (alarms are scoped by it)
    retired_at   timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (site_id, code)
);

CREATE TABLE hw_container (
    id              bigserial PRIMARY KEY,
    site_id         integer NOT NULL REFERENCES site (id),
    code            text NOT NULL,                         -- 容器/包装编码
    waste_type_id   integer NOT NULL REFERENCES hw_waste_type (id),
    container_type  text NOT NULL,                         -- 容器/包装类型: drum, tote, bag...
    volume_l        double precision NOT NULL CHECK (volume_l > 0),
    -- the current state, kept by the ledger functions (the ledger rows are the record)
    stage           text,
    facility_id     integer REFERENCES hw_facility (id),
    weight_kg       double precision,
    last_batch      text,
    last_at         timestamptz,
    first_stored_at timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (site_id, code)
);
CREATE INDEX hw_container_facility_idx ON hw_container (facility_id) WHERE facility_id IS NOT NULL;

CREATE TABLE hw_batch_seq (
    site_id  integer NOT NULL,
    prefix   text NOT NULL,
    day      date NOT NULL,
    last     integer NOT NULL,
    PRIMARY KEY (site_id, prefix, day)
);

-- HJ 1259-2022 Appendix B: one table per stage there, one table with a stage column here (the national
-- system's field order is restored by the exports).
CREATE TABLE hw_ledger (
    id                bigserial PRIMARY KEY,
    site_id           integer NOT NULL REFERENCES site (id),
    container_id      bigint NOT NULL REFERENCES hw_container (id),
    stage             text NOT NULL CHECK (stage IN ('generation', 'storage_in', 'storage_out', 'own_use',
                          'own_disposal', 'sent_use', 'sent_disposal', 'export_use', 'export_disposal')),
    batch_code        text NOT NULL CHECK (batch_code ~ '^HW[A-Z]{2,6}[0-9]{8}[0-9]{3,}$'),
    at                timestamptz NOT NULL,
    waste_type_id     integer NOT NULL REFERENCES hw_waste_type (id),
    quantity_kg       double precision NOT NULL CHECK (quantity_kg >= 0),
    unit              text NOT NULL DEFAULT 'kg',
    container_count   integer NOT NULL DEFAULT 1 CHECK (container_count > 0),
    facility_id       integer REFERENCES hw_facility (id),
    handler           text NOT NULL,                       -- 经办人 (generation dept / transport / out-of-storage)
    handler2          text,                                -- the storage department's handler (B.2)
    source_batch      text,                                -- 产生批次编码 / 入库批次编码 / ...
    destination       text,                                -- 去向
    method            text,                                -- 利用/处置方式
    finished_at       timestamptz,                         -- 完毕时间 (B.4)
    receiver_type     text,                                -- 接收单位类型 (B.5)
    receiver_name     text,
    receiver_licence  text,                                -- licence number or export approval number
    weight_source     text NOT NULL DEFAULT 'manual' CHECK (weight_source IN ('manual', 'scale')),
    scale_point_id    integer REFERENCES point (id),
    corrects_id       bigint REFERENCES hw_ledger (id),
    reason            text,                                -- why a correction was made
    recorded_by       text NOT NULL,
    recorded_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    CHECK ((corrects_id IS NULL) = (reason IS NULL)),
    CHECK (weight_source = 'manual' OR scale_point_id IS NOT NULL)
);
CREATE UNIQUE INDEX hw_ledger_batch ON hw_ledger (site_id, batch_code) WHERE corrects_id IS NULL;
CREATE INDEX hw_ledger_container_idx ON hw_ledger (container_id, id);
CREATE INDEX hw_ledger_site_at_idx ON hw_ledger (site_id, at);
CREATE INDEX hw_ledger_corrects_idx ON hw_ledger (corrects_id) WHERE corrects_id IS NOT NULL;

-- The ledger is kept at least five years (HJ 1259-2022 4.x) and is never changed: no UPDATE, DELETE or TRUNCATE.
CREATE FUNCTION hw_append_only() RETURNS trigger LANGUAGE plpgsql AS $body$
BEGIN
    RAISE EXCEPTION '% is append-only: record a correction instead', TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END
$body$;
CREATE TRIGGER hw_ledger_append_only BEFORE UPDATE OR DELETE ON hw_ledger
    FOR EACH ROW EXECUTE FUNCTION hw_append_only();
CREATE TRIGGER hw_ledger_no_truncate BEFORE TRUNCATE ON hw_ledger
    FOR EACH STATEMENT EXECUTE FUNCTION hw_append_only();

-- The ledger as it stands: each original row, or the fields of its newest correction. Written as a UNION ALL of
-- two plain queries (not one DISTINCT ON over the whole table) so that filters on site, time or container reach
-- the indexes.
CREATE VIEW hw_ledger_current AS
SELECT l.id AS entry_id, l.id AS row_id, l.site_id, l.container_id, l.stage, l.batch_code, l.at, l.waste_type_id,
       l.quantity_kg, l.unit, l.container_count, l.facility_id, l.handler, l.handler2, l.source_batch,
       l.destination, l.method, l.finished_at, l.receiver_type, l.receiver_name, l.receiver_licence,
       l.weight_source, l.scale_point_id, l.recorded_by, l.recorded_at, false AS corrected
FROM hw_ledger l
WHERE l.corrects_id IS NULL AND NOT EXISTS (SELECT 1 FROM hw_ledger c WHERE c.corrects_id = l.id)
UNION ALL
SELECT * FROM (
    SELECT DISTINCT ON (l.corrects_id)
           l.corrects_id, l.id, l.site_id, l.container_id, l.stage, l.batch_code, l.at, l.waste_type_id,
           l.quantity_kg, l.unit, l.container_count, l.facility_id, l.handler, l.handler2, l.source_batch,
           l.destination, l.method, l.finished_at, l.receiver_type, l.receiver_name, l.receiver_licence,
           l.weight_source, l.scale_point_id, l.recorded_by, l.recorded_at, true
    FROM hw_ledger l WHERE l.corrects_id IS NOT NULL
    ORDER BY l.corrects_id, l.id DESC) newest;

-- Electronic transfer manifests (危险废物转移管理办法, Order No. 23): one per vehicle trip and waste type.
CREATE TABLE hw_manifest (
    id                bigserial PRIMARY KEY,
    site_id           integer NOT NULL REFERENCES site (id),
    number            text UNIQUE CHECK (number ~ '^[0-9]{14}$'),
    state             text NOT NULL,
    waste_type_id     integer NOT NULL REFERENCES hw_waste_type (id),
    trip              text NOT NULL,                       -- the vehicle trip (one manifest per trip and type)
    carrier_name      text NOT NULL,
    vehicle_plate     text NOT NULL,
    carrier_permit    text NOT NULL,                       -- 道路运输经营许可证号
    receiver_name     text NOT NULL,
    receiver_licence  text NOT NULL,                       -- 危险废物经营许可证号
    receiver_scope    text[] NOT NULL,                     -- waste codes or categories (HWxx) of the licence
    method            text,
    paper             boolean NOT NULL DEFAULT false,
    shipped_kg        double precision,
    received_kg       double precision,
    discrepancy       boolean NOT NULL DEFAULT false,
    shipped_at        timestamptz,
    delivered_at      timestamptz,
    received_at       timestamptz,
    backfilled_at     timestamptz,
    disposed_at       timestamptz,
    closed_at         timestamptz,
    created_by        text NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (site_id, trip, waste_type_id)
);
CREATE INDEX hw_manifest_open_idx ON hw_manifest (site_id, state) WHERE closed_at IS NULL;

CREATE TABLE hw_manifest_container (
    manifest_id   bigint NOT NULL REFERENCES hw_manifest (id),
    container_id  bigint NOT NULL REFERENCES hw_container (id),
    PRIMARY KEY (manifest_id, container_id)
);

CREATE TABLE hw_manifest_event (
    id           bigserial PRIMARY KEY,
    manifest_id  bigint NOT NULL REFERENCES hw_manifest (id),
    event        text NOT NULL,
    from_state   text NOT NULL,
    to_state     text NOT NULL,
    at           timestamptz NOT NULL,
    actor        text NOT NULL,
    detail       jsonb NOT NULL DEFAULT '{}',
    recorded_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX hw_manifest_event_idx ON hw_manifest_event (manifest_id, id);
CREATE TRIGGER hw_manifest_event_append_only BEFORE UPDATE OR DELETE ON hw_manifest_event
    FOR EACH ROW EXECUTE FUNCTION hw_append_only();

-- Declarations filed in the national system (monthly, quarterly, annual), for the due-date findings.
CREATE TABLE hw_declaration (
    site_id       integer NOT NULL REFERENCES site (id),
    period        text NOT NULL CHECK (period ~ '^[0-9]{4}(-[0-9]{2}|-Q[1-4])?$'),   -- 2026-03, 2026-Q1, 2026
    filed_at      timestamptz NOT NULL,
    filed_by      text NOT NULL,
    PRIMARY KEY (site_id, period)
);

-- Last severity of each compliance finding (rule, subject), so that the evaluation reports changes only.
CREATE TABLE hw_finding_state (
    rule         text NOT NULL,
    subject      text NOT NULL,                            -- SubjectRef.key
    site         text NOT NULL,
    area         text,
    device       text,
    severity     smallint NOT NULL,
    message      text NOT NULL,
    updated_at   timestamptz NOT NULL,
    PRIMARY KEY (rule, subject)
);
