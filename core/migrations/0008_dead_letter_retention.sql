-- Dead letters are kept for a while, not forever (issue 12): the ingest housekeeping prunes rows older than
-- EHS_INGEST_DEAD_LETTER_DAYS and, so that made-up topics cannot fill the disk, rows beyond a cap per topic and
-- day and a cap in all. What the caps removed is counted here, per day and reason: never silently.
CREATE INDEX dead_letter_topic_idx ON dead_letter (topic, received_at);

CREATE TABLE dead_letter_pruned (
    day     date NOT NULL,              -- UTC day the pruned rows were received
    reason  text NOT NULL,
    cause   text NOT NULL CHECK (cause IN ('topic_cap', 'total_cap')),
    rows    bigint NOT NULL,
    example_topic text,
    PRIMARY KEY (day, reason, cause)
);
