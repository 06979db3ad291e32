-- Continuations, unique keys and mutexes.
-- Times are REAL seconds since the Unix epoch (UTC).

-- A job created with a unique key while another job holding that key
-- is enqueued, scheduled or processing is not created: this index is
-- what makes a second active job with the same key impossible.
ALTER TABLE jobs ADD COLUMN unique_key TEXT;
CREATE UNIQUE INDEX jobs_unique_key ON jobs (unique_key)
    WHERE unique_key IS NOT NULL
    AND state IN ('enqueued', 'scheduled', 'processing');

-- At most mutex_limit jobs with the same mutex are processing at once:
-- fetch counts them through this index, so a dead server's jobs free
-- their slots when they are recovered.
ALTER TABLE jobs ADD COLUMN mutex TEXT;
ALTER TABLE jobs ADD COLUMN mutex_limit INTEGER;
CREATE INDEX jobs_mutex_held ON jobs (mutex)
    WHERE state = 'processing' AND mutex IS NOT NULL;

-- A continuation (job_id, awaiting) runs when its parent reaches one of
-- on_states (a comma-separated list of final states).
CREATE TABLE job_continuations (
    parent_id INTEGER NOT NULL,
    job_id    INTEGER NOT NULL,
    on_states TEXT    NOT NULL,
    PRIMARY KEY (parent_id, job_id)
) WITHOUT ROWID;
CREATE INDEX job_continuations_by_job ON job_continuations (job_id);
