-- Queue entries move into the jobs table, so that enqueuing a job writes
-- one row fewer: an enqueued job's queue entry is now its entry in the
-- partial index jobs_queued, ordered by seq within its queue. A job has
-- at most one queue entry because it has one row. seq keeps the order
-- of the old entries and means nothing outside the enqueued state.

ALTER TABLE jobs ADD COLUMN seq INTEGER;
UPDATE jobs SET seq = (
    SELECT q.seq FROM job_queue AS q WHERE q.job_id = jobs.id
) WHERE state = 'enqueued';
CREATE INDEX jobs_queued ON jobs (queue, seq) WHERE state = 'enqueued';
DROP TABLE job_queue;
