-- Reports (reports/): runs of report generation as background jobs with a progress record, and the archive of
-- every file generated. The archive is tamper-evident: rows are append-only, each holds the SHA-256 of its bytes,
-- the parameters, the configuration and data revisions it was made from, and the sequence number of its entry in
-- the hash-chained audit record (core/audit.py), whose detail repeats the SHA-256.

CREATE TABLE report_run (
    id            bigserial PRIMARY KEY,
    kind          text NOT NULL,
    site          text NOT NULL,
    params        jsonb NOT NULL,
    formats       text[] NOT NULL,
    status        text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'running', 'done', 'failed')),
    progress      real NOT NULL DEFAULT 0 CHECK (progress >= 0 AND progress <= 1),
    step          text NOT NULL DEFAULT '',
    error         text,
    requested_by  text NOT NULL,
    schedule      text,                              -- the schedule that started it, if any
    created_at    timestamptz NOT NULL DEFAULT now(),
    started_at    timestamptz,
    finished_at   timestamptz
);
CREATE INDEX report_run_status_idx ON report_run (status, created_at);

CREATE TABLE report_file (
    id            bigint PRIMARY KEY,
    run_id        bigint REFERENCES report_run (id),
    kind          text NOT NULL,
    site          text NOT NULL,
    areas         text[] NOT NULL,                   -- area codes the document covers: who may see it
    lang          text NOT NULL,
    format        text NOT NULL,
    filename      text NOT NULL,
    media_type    text NOT NULL,
    size_bytes    integer NOT NULL,
    sha256        text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    content       bytea NOT NULL,
    params        jsonb NOT NULL,
    revision      jsonb NOT NULL,
    period_start  timestamptz NOT NULL,
    period_end    timestamptz NOT NULL,
    data_as_of    timestamptz,
    generated_at  timestamptz NOT NULL,
    generated_by  text NOT NULL,
    audit_seq     bigint NOT NULL
);
CREATE SEQUENCE report_file_id_seq OWNED BY report_file.id;
CREATE INDEX report_file_sha256_idx ON report_file (sha256);
CREATE INDEX report_file_site_idx ON report_file (site, generated_at DESC);
CREATE INDEX report_file_run_idx ON report_file (run_id);
CREATE TRIGGER report_file_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON report_file
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_rewrite();
