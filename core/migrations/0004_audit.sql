-- The audit record: append-only and hash-chained (each entry carries the hash of the previous one), so an
-- edited or deleted entry is detected by core.audit.verify. ``seq`` is gap-free (assigned under a lock, not by a
-- sequence whose values a rollback would skip), so a deleted entry shows as a gap.

CREATE TABLE audit_entry (
    seq        bigint PRIMARY KEY,
    at         timestamptz NOT NULL,
    actor      text NOT NULL,
    action     text NOT NULL,
    target     text NOT NULL DEFAULT '',
    detail     jsonb NOT NULL DEFAULT '{}',
    prev_hash  text NOT NULL,
    hash       text NOT NULL
);
CREATE INDEX audit_entry_at_idx ON audit_entry (at);
CREATE INDEX audit_entry_target_idx ON audit_entry (target, seq);

CREATE FUNCTION audit_entry_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit record is append-only (% refused)', TG_OP;
END
$$;
CREATE TRIGGER audit_entry_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_entry
    FOR EACH STATEMENT EXECUTE FUNCTION audit_entry_is_append_only();
