-- Which ingest process owns which site (issue 11, scale-out): every reading of a site must reach the one process
-- that evaluates it, so that stateful rules (rates, votes, silence, delays) see all of its data. A process
-- claims its sites at start (site '*' = every site) and renews the lease with its heartbeat; a claim on a site
-- leased to another owner is refused. ``owner`` is the MQTT client id: the restart of a crashed process (same
-- client id, same persistent session) takes its sites back at once.
CREATE TABLE ingest_site_lease (
    site        text PRIMARY KEY,
    owner       text NOT NULL,
    instance    text NOT NULL,
    acquired_at timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL
);
