-- Jobs, their history, queue entries, parameters, counters and servers.
-- Times are REAL seconds since the Unix epoch (UTC).

CREATE TABLE jobs (
    id               INTEGER PRIMARY KEY,
    function         TEXT    NOT NULL,
    arguments        TEXT    NOT NULL,
    queue            TEXT    NOT NULL,
    state            TEXT    NOT NULL,
    reason           TEXT    NOT NULL DEFAULT '',
    version          INTEGER NOT NULL DEFAULT 1,
    attempt          INTEGER NOT NULL DEFAULT 0,
    created_at       REAL    NOT NULL,
    state_changed_at REAL    NOT NULL,
    scheduled_at     REAL,
    server           TEXT,
    expires_at       REAL,
    timeout          REAL
);

-- Listing newest first by state, by state and queue, and by queue.
CREATE INDEX jobs_by_state ON jobs (state, id);
CREATE INDEX jobs_by_state_queue ON jobs (state, queue, id);
CREATE INDEX jobs_by_queue ON jobs (queue, id);
-- Maintenance loops touch only the rows they are about.
CREATE INDEX jobs_due ON jobs (scheduled_at) WHERE state = 'scheduled';
CREATE INDEX jobs_expiring ON jobs (expires_at)
    WHERE expires_at IS NOT NULL;
CREATE INDEX jobs_processing ON jobs (server) WHERE state = 'processing';

CREATE TABLE job_history (
    id         INTEGER PRIMARY KEY,
    job_id     INTEGER NOT NULL,
    state      TEXT    NOT NULL,
    reason     TEXT    NOT NULL,
    created_at REAL    NOT NULL,
    data       TEXT    NOT NULL DEFAULT '{}'
);
CREATE INDEX job_history_by_job ON job_history (job_id, id);

-- One row per enqueued job: the primary key on job_id is what makes a
-- second queue entry for the same job impossible.
CREATE TABLE job_queue (
    job_id INTEGER PRIMARY KEY,
    queue  TEXT    NOT NULL,
    seq    INTEGER NOT NULL
);
CREATE INDEX job_queue_fetch ON job_queue (queue, seq);

CREATE TABLE job_parameters (
    job_id INTEGER NOT NULL,
    name   TEXT    NOT NULL,
    value  TEXT    NOT NULL,
    PRIMARY KEY (job_id, name)
) WITHOUT ROWID;

CREATE TABLE job_counters (
    state TEXT    NOT NULL,
    queue TEXT    NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (state, queue)
) WITHOUT ROWID;

CREATE TABLE servers (
    name         TEXT    PRIMARY KEY,
    queues       TEXT    NOT NULL,
    workers      INTEGER NOT NULL,
    started_at   REAL    NOT NULL,
    heartbeat_at REAL    NOT NULL
) WITHOUT ROWID;
