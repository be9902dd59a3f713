-- The audit record names the site and area an entry concerns (reads are scoped by them: api/routes/audit.py),
-- and each entry carries the version of its hash (core/audit.py): 1 for the plain SHA-256 chain written before
-- this migration, 2 for the keyed (HMAC) chain over a time-zone-independent form, written from now on. The first
-- v2 entry chains from the last v1 hash, so nothing is re-hashed here (the database does not hold the key).

ALTER TABLE audit_entry ADD COLUMN site text, ADD COLUMN area text, ADD COLUMN hv smallint NOT NULL DEFAULT 1;
ALTER TABLE audit_entry ALTER COLUMN hv DROP DEFAULT;

-- Earlier entries: their site and area from the object they name (these columns are outside the v1 hash; the
-- append-only trigger is lifted for this statement only, by the owner that runs migrations)
ALTER TABLE audit_entry DISABLE TRIGGER audit_entry_append_only;
UPDATE audit_entry e SET site = a.site, area = a.area FROM alarm a WHERE e.target = 'alarm:' || a.id;
UPDATE audit_entry e SET site = c.site, area = c.area FROM interlock_command c WHERE e.target = 'command:' || c.id;
UPDATE audit_entry e SET site = b.site FROM interlock_bypass b WHERE e.target = 'bypass:' || b.id;
UPDATE audit_entry SET site = detail->>'site' WHERE site IS NULL AND jsonb_typeof(detail->'site') = 'string';
ALTER TABLE audit_entry ENABLE TRIGGER audit_entry_append_only;

CREATE INDEX audit_entry_site_idx ON audit_entry (site, seq);
