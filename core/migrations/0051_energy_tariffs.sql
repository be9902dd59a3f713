-- Energy prices and conversion as data (issue 13, standards.md 6.3 and 6.4): time-of-use tariffs (seasons x day
-- types x bands x prices, valid_from/valid_to, critical peak), two-part tariffs (demand or capacity charge),
-- per-medium prices; GB/T 2589-2020 standard-coal coefficients, versioned; the energy findings' last state.

CREATE TABLE energy_tariff (
    id                   serial PRIMARY KEY,
    site_id              integer NOT NULL REFERENCES site (id),
    code                 text NOT NULL CHECK (code ~ '^[a-z0-9][a-z0-9_-]*$'),
    name                 text NOT NULL,
    medium               text NOT NULL CHECK (medium IN
                             ('electricity', 'water', 'compressed_air', 'nitrogen', 'steam', 'natural_gas')),
    valid_from           date NOT NULL,
    valid_to             date,                                  -- exclusive; NULL: open
    -- two-part tariff: CNY per kW of the month's maximum 15-minute demand, or CNY per kVA of contracted capacity
    demand_cny_per_kw    double precision CHECK (demand_cny_per_kw >= 0),
    capacity_cny_per_kva double precision CHECK (capacity_cny_per_kva >= 0),
    capacity_kva         double precision CHECK (capacity_kva > 0),
    contracted_max_kw    double precision CHECK (contracted_max_kw > 0),
    created_by           text NOT NULL,
    created_at           timestamptz NOT NULL DEFAULT now(),
    UNIQUE (site_id, code),
    CHECK (valid_to IS NULL OR valid_to > valid_from)
);

-- Price of each band (CNY per unit of the medium: kWh, m3, Nm3, t).
CREATE TABLE energy_tariff_price (
    tariff_id  integer NOT NULL REFERENCES energy_tariff (id) ON DELETE CASCADE,
    band       text NOT NULL CHECK (band IN ('critical', 'peak', 'flat', 'valley')),
    price_cny  double precision NOT NULL CHECK (price_cny >= 0),
    PRIMARY KEY (tariff_id, band)
);

-- Time bands in site-local time: months of the season, ISO weekdays (1 = Monday) of the day type, and
-- [start_min, end_min) minutes of the day. Hours not covered by any row are 'flat'.
CREATE TABLE energy_tariff_period (
    id         serial PRIMARY KEY,
    tariff_id  integer NOT NULL REFERENCES energy_tariff (id) ON DELETE CASCADE,
    season     text NOT NULL,
    months     smallint[] NOT NULL,
    weekdays   smallint[] NOT NULL DEFAULT '{1,2,3,4,5,6,7}',
    start_min  smallint NOT NULL CHECK (start_min BETWEEN 0 AND 1439),
    end_min    smallint NOT NULL CHECK (end_min BETWEEN 1 AND 1440),
    band       text NOT NULL CHECK (band IN ('critical', 'peak', 'flat', 'valley')),
    CHECK (end_min > start_min)
);

-- Standard-coal coefficients (kgce per unit of the medium), versioned; basis 'calorific' (当量值) or
-- 'equivalent' (等价值, electricity only: the year's coal per kWh supplied by thermal power).
CREATE TABLE energy_coefficient (
    id             serial PRIMARY KEY,
    version        text NOT NULL,
    medium         text NOT NULL,
    basis          text NOT NULL CHECK (basis IN ('calorific', 'equivalent')),
    unit           text NOT NULL,
    kgce_per_unit  double precision NOT NULL CHECK (kgce_per_unit > 0),
    valid_from     date NOT NULL,
    source         text NOT NULL,
    UNIQUE (version, medium, basis)
);

INSERT INTO energy_coefficient (version, medium, basis, unit, kgce_per_unit, valid_from, source) VALUES
    ('GB/T 2589-2020', 'electricity', 'calorific', 'kWh', 0.1229, '2021-02-01', 'GB/T 2589-2020 Appendix A: 3600 kJ / 29307 kJ'),
    ('GB/T 2589-2020', 'electricity', 'equivalent', 'kWh', 0.3027, '2021-02-01',
     'UNCONFIRMED placeholder: national average coal per kWh supplied by thermal power; replace with the year''s published figure'),
    ('GB/T 2589-2020', 'natural_gas', 'calorific', 'Nm3', 1.3300, '2021-02-01', 'GB/T 2589-2020 Appendix A, NCV 38931 kJ/m3'),
    ('GB/T 2589-2020', 'steam', 'calorific', 't', 128.6, '2021-02-01', 'GB/T 2589-2020 Appendix A, low-pressure steam 3763 MJ/t'),
    ('GB/T 2589-2020', 'water', 'calorific', 'm3', 0.2571, '2021-02-01', 'GB/T 2589-2020 耗能工质, new water (UNCONFIRMED for the 2020 edition)'),
    ('GB/T 2589-2020', 'compressed_air', 'calorific', 'Nm3', 0.0400, '2021-02-01', 'GB/T 2589 耗能工质, compressed air 1.17 MJ/m3 (UNCONFIRMED for the 2020 edition)'),
    ('GB/T 2589-2020', 'nitrogen', 'calorific', 'Nm3', 0.4000, '2021-02-01', 'GB/T 2589 耗能工质, nitrogen as by-product 11.72 MJ/m3 (UNCONFIRMED for the 2020 edition)');

-- Last severity of each energy finding (rule, subject), so that evaluations report changes only.
CREATE TABLE energy_finding_state (
    rule        text NOT NULL,
    subject     text NOT NULL,
    site        text NOT NULL,
    area        text,
    device      text,
    severity    smallint NOT NULL,
    message     text NOT NULL,
    since       timestamptz,
    updated_at  timestamptz NOT NULL,
    PRIMARY KEY (rule, subject)
);

-- Balance: a parent meter's configured loss limit (percent) and how long it must persist before a finding.
CREATE TABLE energy_balance_limit (
    meter_id      integer PRIMARY KEY REFERENCES meter (id),
    loss_pct_max  double precision NOT NULL CHECK (loss_pct_max > 0),
    hold_minutes  integer NOT NULL DEFAULT 60 CHECK (hold_minutes >= 15)
);
