-- Totals of jobs that finished, per state (succeeded or failed) and per
-- hour, for the history graph of the dashboard. They move in the same
-- transaction as the state change. Sharded like job_counters, so that
-- workers finishing jobs at once do not queue on one row per hour.
-- Additive: servers of the previous release ignore the table.

CREATE TABLE job_outcomes (
    state text        NOT NULL,
    hour  timestamptz NOT NULL,
    shard smallint    NOT NULL,
    count bigint      NOT NULL,
    PRIMARY KEY (state, hour, shard)
);
