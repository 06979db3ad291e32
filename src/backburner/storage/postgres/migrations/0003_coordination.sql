-- Continuations, unique keys and mutexes: new nullable columns and a
-- new table, so servers of the previous release keep working (they
-- never set nor read them).
--
-- The three partial indexes on jobs are built in this transaction, not
-- CONCURRENTLY: CREATE INDEX CONCURRENTLY waits for every open
-- transaction, including those of other processes waiting for the
-- migration lock this one holds, which deadlocks concurrent migrators.
-- Known cost: writes to jobs wait while the indexes are built (one
-- scan of the table).

-- A job created with a unique key while another job holding that key
-- is enqueued, scheduled or processing is not created: the index is
-- what makes a second active job with the same key impossible.
ALTER TABLE jobs ADD COLUMN unique_key text;
CREATE UNIQUE INDEX jobs_unique_key ON jobs (unique_key)
    WHERE unique_key IS NOT NULL
      AND state IN ('enqueued', 'scheduled', 'processing');

-- At most mutex_limit jobs with the same mutex are processing at once:
-- fetch counts the holders through the first index and finds queued
-- jobs that wait for a mutex through the second.
ALTER TABLE jobs ADD COLUMN mutex text;
ALTER TABLE jobs ADD COLUMN mutex_limit integer;
CREATE INDEX jobs_mutex_held ON jobs (mutex)
    WHERE state = 'processing' AND mutex IS NOT NULL;
CREATE INDEX jobs_mutex_waiting ON jobs (queue)
    WHERE state = 'enqueued' AND mutex IS NOT NULL;

-- A continuation (job_id, awaiting) runs when its parent reaches one of
-- on_states (a comma-separated list of final states).
CREATE TABLE job_continuations (
    parent_id bigint NOT NULL,
    job_id    bigint NOT NULL,
    on_states text   NOT NULL,
    PRIMARY KEY (parent_id, job_id)
);
CREATE INDEX job_continuations_by_job ON job_continuations (job_id);
