-- Totals of jobs that finished, per state (succeeded or failed) and per
-- hour, for the history graph of the dashboard. They move in the same
-- transaction as the state change, like job_counters. Hours are REAL
-- seconds since the Unix epoch (UTC), at the start of the hour.

CREATE TABLE job_outcomes (
    state TEXT    NOT NULL,
    hour  REAL    NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (state, hour)
) WITHOUT ROWID;
