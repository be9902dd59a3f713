-- HJ 212 data loggers (数采仪): credentials and field mapping from the plant file, the data flag of the
-- readings they send, and the sender's address of rejected frames.

-- A device of the plant that is an HJ 212 data logger, known by its MN; PW is the standard's 6-character
-- access password (sent in clear in every frame, HJ 212-2017 Table 3: a shared identifier, not a secret key).
CREATE TABLE hj212_logger (
    device_id   integer PRIMARY KEY REFERENCES device (id),
    mn          text NOT NULL CHECK (mn ~ '^[0-9A-Za-z]{1,24}$'),
    password    text NOT NULL CHECK (length(password) <= 6),
    -- expected system code (ST); null accepts any
    st          text,
    retired_at  timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX hj212_logger_mn_idx ON hj212_logger (mn) WHERE retired_at IS NULL;

-- Which point of the logger's device stores a CP item of a data command, e.g. (2061, 'w01018-Avg').
CREATE TABLE hj212_field (
    device_id  integer NOT NULL REFERENCES hj212_logger (device_id),
    cn         text NOT NULL CHECK (cn IN ('2011', '2021', '2031', '2041', '2051', '2061')),
    field      text NOT NULL,
    point_id   integer NOT NULL REFERENCES point (id),
    PRIMARY KEY (device_id, cn, field)
);

-- The HJ 212 data flag of each reading that came with one other than N (Table 8: N normal, F stopped, M maintenance, S manual
-- setting, D fault, C calibration, T above the measuring range, B communication error), beside `reading` rather
-- than in it, so that the reading table keeps one shape for every writer and partitioning scheme.
-- reading.quality carries the summary every other reader understands: N (or no flag) -> 0 good, S/T -> 1
-- uncertain, F/M/D/C/B -> 2 bad; a reading of quality 0 has no row here (N is the normal case).
CREATE TABLE reading_flag (
    point_id  integer NOT NULL,
    time      timestamptz NOT NULL,
    flag      text NOT NULL CHECK (flag IN ('N', 'F', 'M', 'S', 'D', 'C', 'T', 'B')),
    PRIMARY KEY (point_id, time)
);

-- Where a rejected HJ 212 frame came from (host:port of the TCP peer).
ALTER TABLE dead_letter ADD COLUMN peer text;
