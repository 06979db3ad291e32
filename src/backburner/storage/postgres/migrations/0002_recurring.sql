-- Recurring jobs: a cron schedule that creates a job at each occurrence.
-- The version column is the compare-and-set that lets any number of
-- servers schedule while each occurrence creates one job.
--
-- A new table: servers of the previous release never look at it.

CREATE TABLE recurring_jobs (
    id          text             PRIMARY KEY,
    function    text             NOT NULL,
    arguments   text             NOT NULL,
    queue       text             NOT NULL,
    cron        text             NOT NULL,
    time_zone   text             NOT NULL,
    missed      text             NOT NULL,
    timeout     double precision,
    paused      boolean          NOT NULL DEFAULT false,
    next_run_at timestamptz,
    last_run_at timestamptz,
    last_job_id bigint,
    error       text,
    failures    integer          NOT NULL DEFAULT 0,
    version     integer          NOT NULL DEFAULT 1,
    created_at  timestamptz      NOT NULL,
    updated_at  timestamptz      NOT NULL
);

-- The scheduler asks only for active recurring jobs, earliest first. The
-- table is new and empty, so the index needs no CONCURRENTLY.
CREATE INDEX recurring_jobs_due ON recurring_jobs (next_run_at)
    WHERE NOT paused AND next_run_at IS NOT NULL;
