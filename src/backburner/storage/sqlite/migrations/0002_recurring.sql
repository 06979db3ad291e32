-- Recurring jobs: a cron schedule that creates a job at each occurrence.
-- The version column is the compare-and-set that lets any number of
-- servers schedule while each occurrence creates one job.
-- Times are REAL seconds since the Unix epoch (UTC).

CREATE TABLE recurring_jobs (
    id          TEXT    PRIMARY KEY,
    function    TEXT    NOT NULL,
    arguments   TEXT    NOT NULL,
    queue       TEXT    NOT NULL,
    cron        TEXT    NOT NULL,
    time_zone   TEXT    NOT NULL,
    missed      TEXT    NOT NULL,
    timeout     REAL,
    paused      INTEGER NOT NULL DEFAULT 0,
    next_run_at REAL,
    last_run_at REAL,
    last_job_id INTEGER,
    error       TEXT,
    failures    INTEGER NOT NULL DEFAULT 0,
    version     INTEGER NOT NULL DEFAULT 1,
    created_at  REAL    NOT NULL,
    updated_at  REAL    NOT NULL
) WITHOUT ROWID;

-- The scheduler asks only for active recurring jobs, earliest first.
CREATE INDEX recurring_jobs_due ON recurring_jobs (next_run_at)
    WHERE paused = 0 AND next_run_at IS NOT NULL;
