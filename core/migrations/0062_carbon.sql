-- Carbon accounting (standards.md section 5): the emission-factor library as versioned data, per-site settings,
-- direct entries (fuels not metered, process emissions, refrigerant leaks), contractual instruments for
-- market-based scope 2 (green certificates with serial ranges, green-power contracts), offsets (reported beside
-- gross, never netted), reduction projects, closed periods with their frozen results and audited revisions,
-- and production batches for the product footprint.

-- One imported factor library; a version's content never changes (sha256 of its files).
CREATE TABLE carbon_factor_set (
    version      text PRIMARY KEY CHECK (version ~ '^[0-9A-Za-z][0-9A-Za-z._-]*$'),
    sha256       text NOT NULL,
    imported_at  timestamptz NOT NULL DEFAULT now(),
    imported_by  text NOT NULL,
    active       boolean NOT NULL DEFAULT false
);
CREATE UNIQUE INDEX carbon_factor_set_one_active ON carbon_factor_set (active) WHERE active;

-- Every factor row of every version; ``row_key`` names it in ledgers (kind:code:region:year:basis).
CREATE TABLE carbon_factor (
    version          text NOT NULL REFERENCES carbon_factor_set (version),
    row_key          text NOT NULL,
    kind             text NOT NULL CHECK (kind IN ('grid', 'fuel', 'heat', 'gwp', 'material')),
    code             text NOT NULL,           -- grid: region code; fuel/heat: fuel code; gwp: gas; material code
    region_level     text CHECK (region_level IN ('national', 'regional', 'province')),
    data_year        smallint,
    basis            text,                    -- grid: average | excl_market_nonfossil | fossil; gwp: AR5 | AR6
    value            double precision NOT NULL CHECK (value >= 0),   -- kgCO2e per ``unit`` (gwp: dimensionless)
    unit             text NOT NULL,
    detail           jsonb NOT NULL DEFAULT '{}',                    -- fuel: ncv, cc, of
    publication_ref  text NOT NULL,
    published_on     date,
    PRIMARY KEY (version, row_key)
);

CREATE TABLE carbon_site_setting (
    site_id           integer PRIMARY KEY REFERENCES site (id),
    province          text,                  -- region codes of the factor library, most specific first
    grid_region       text,
    factor_lag_years  smallint NOT NULL DEFAULT 2 CHECK (factor_lag_years BETWEEN 0 AND 10),
    vintage_years     smallint NOT NULL DEFAULT 1 CHECK (vintage_years BETWEEN 0 AND 5),
    steam_gj_per_t    double precision NOT NULL DEFAULT 2.8 CHECK (steam_gj_per_t > 0),
    gwp_basis         text NOT NULL DEFAULT 'AR6' CHECK (gwp_basis IN ('AR5', 'AR6')),
    -- meter codes of on-site generation (PV); the site meter is taken to measure grid import only
    pv_meters         text[] NOT NULL DEFAULT '{}',
    updated_at        timestamptz NOT NULL DEFAULT now()
);

-- Emissions typed in: fuels not metered (diesel for forklifts and generators), process emissions, refrigerant
-- and SF6 leaks (kg of gas, times its GWP). Append-only; a correction is a new row with ``corrects``.
CREATE TABLE carbon_entry (
    id          bigserial PRIMARY KEY,
    site_id     integer NOT NULL REFERENCES site (id),
    area        text,                                   -- area code; NULL = the site
    period_start date NOT NULL,                         -- site-local month start the entry belongs to
    kind        text NOT NULL CHECK (kind IN ('fuel', 'process', 'fugitive')),
    code        text NOT NULL,                          -- fuel code, gas (gwp) code, or process-emission name
    quantity    double precision NOT NULL CHECK (quantity >= 0),
    unit        text NOT NULL,
    co2e_kg     double precision CHECK (co2e_kg >= 0),  -- process emissions: entered as kgCO2e
    note        text NOT NULL DEFAULT '',
    corrects    bigint REFERENCES carbon_entry (id),
    entered_by  text NOT NULL,
    entered_at  timestamptz NOT NULL DEFAULT now(),
    CHECK (date_trunc('month', period_start) = period_start)
);
CREATE INDEX carbon_entry_site_idx ON carbon_entry (site_id, period_start);

-- Contractual instruments of market-based scope 2 (GHG Protocol Scope 2 Guidance ch. 7): green certificates
-- (绿证, one per MWh) with their serial range and vintage, and green-power contracts (绿电交易) in MWh.
-- A serial is claimed once: ranges of one scheme and prefix never overlap (checked under a lock in carbon.service).
CREATE TABLE carbon_instrument (
    id            bigserial PRIMARY KEY,
    site_id       integer NOT NULL REFERENCES site (id),
    kind          text NOT NULL CHECK (kind IN ('certificate', 'contract')),
    scheme        text NOT NULL,                        -- GEC (绿证), I-REC, GREEN_POWER ...
    serial_prefix text NOT NULL DEFAULT '',
    serial_first  bigint,
    serial_last   bigint,
    mwh           double precision NOT NULL CHECK (mwh > 0),
    vintage_year  smallint NOT NULL,
    period_start  date NOT NULL,                        -- the consumption period it is claimed for
    period_end    date NOT NULL,
    reference     text NOT NULL,
    created_by    text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    CHECK (period_start < period_end),
    CHECK ((kind = 'certificate') = (serial_first IS NOT NULL AND serial_last IS NOT NULL)),
    CHECK (serial_first IS NULL OR (serial_first >= 0 AND serial_last >= serial_first))
);
CREATE INDEX carbon_instrument_serial_idx ON carbon_instrument (scheme, serial_prefix, serial_first);
CREATE INDEX carbon_instrument_site_idx ON carbon_instrument (site_id, period_start);

-- Offsets (CCER and other credits): registry serials and the retirement record; never netted into gross.
CREATE TABLE carbon_offset (
    id              bigserial PRIMARY KEY,
    site_id         integer NOT NULL REFERENCES site (id),
    scheme          text NOT NULL,                      -- CCER, VCS, GS ...
    project         text NOT NULL,
    serial_prefix   text NOT NULL DEFAULT '',
    serial_first    bigint NOT NULL CHECK (serial_first >= 0),
    serial_last     bigint NOT NULL,
    tco2e           double precision NOT NULL CHECK (tco2e > 0),
    vintage_year    smallint NOT NULL,
    retired_on      date NOT NULL,
    retirement_ref  text NOT NULL,
    claim_year      smallint NOT NULL,
    created_by      text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (serial_last >= serial_first)
);
CREATE INDEX carbon_offset_serial_idx ON carbon_offset (scheme, serial_prefix, serial_first);

-- Reduction projects and the savings tracked against their baseline.
CREATE TABLE carbon_project (
    id              serial PRIMARY KEY,
    site_id         integer NOT NULL REFERENCES site (id),
    code            text NOT NULL CHECK (code ~ '^[a-z0-9][a-z0-9_-]*$'),
    name            text NOT NULL,
    area            text,
    baseline_tco2e_per_year double precision NOT NULL CHECK (baseline_tco2e_per_year >= 0),
    started_on      date NOT NULL,
    created_by      text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (site_id, code)
);
CREATE TABLE carbon_project_saving (
    project_id    integer NOT NULL REFERENCES carbon_project (id),
    period_start  date NOT NULL,
    tco2e         double precision NOT NULL,
    method        text NOT NULL,
    recorded_by   text NOT NULL,
    recorded_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (project_id, period_start)
);

-- A closed period: its results frozen with the factor version that produced them. A later factor change leaves
-- it alone; ``carbon.service.recalculate`` writes the next revision and an audit entry. Revisions are kept.
CREATE TABLE carbon_period (
    site_id         integer NOT NULL REFERENCES site (id),
    period          text NOT NULL CHECK (period ~ '^[0-9]{4}(-(0[1-9]|1[0-2]))?$'),   -- YYYY or YYYY-MM
    revision        integer NOT NULL CHECK (revision >= 1),
    factor_version  text NOT NULL REFERENCES carbon_factor_set (version),
    result          jsonb NOT NULL,
    reason          text NOT NULL,
    closed_by       text NOT NULL,
    closed_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (site_id, period, revision)
);

CREATE OR REPLACE FUNCTION carbon_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: write a new revision or a correcting row', TG_TABLE_NAME;
END $$;
CREATE TRIGGER carbon_period_append_only BEFORE UPDATE OR DELETE ON carbon_period
    FOR EACH ROW EXECUTE FUNCTION carbon_refuse_change();
CREATE TRIGGER carbon_entry_append_only BEFORE UPDATE OR DELETE ON carbon_entry
    FOR EACH ROW EXECUTE FUNCTION carbon_refuse_change();
CREATE TRIGGER carbon_factor_append_only BEFORE UPDATE OR DELETE ON carbon_factor
    FOR EACH ROW EXECUTE FUNCTION carbon_refuse_change();

-- The plant's routing for the product footprint (carbon.footprint.Routing as JSON), one current per site.
CREATE TABLE carbon_routing (
    site_id     integer PRIMARY KEY REFERENCES site (id),
    spec        jsonb NOT NULL,
    updated_by  text NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Production batches: good output per process in the batch's window (the footprint's allocation key).
CREATE TABLE carbon_batch (
    id          bigserial PRIMARY KEY,
    site_id     integer NOT NULL REFERENCES site (id),
    code        text NOT NULL,
    product     text NOT NULL,
    started_at  timestamptz NOT NULL,
    ended_at    timestamptz NOT NULL,
    output      jsonb NOT NULL,              -- {process code: good units}
    created_by  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (site_id, code),
    CHECK (started_at < ended_at)
);
CREATE INDEX carbon_batch_window_idx ON carbon_batch (site_id, started_at);
