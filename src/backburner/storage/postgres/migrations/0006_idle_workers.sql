-- Idle workers, so that an enqueue can hand its job straight to a
-- server with a worker free (see create_job_handoff): the job is written
-- in processing, held by that server, and the NOTIFY carries it to the
-- server, which starts it without a fetch: one durable commit on the
-- way from enqueue to start instead of two.
--
-- One row per worker of each server (slot 0 to workers - 1). A server's
-- fetch marks as idle as many of its slots as it could start jobs at
-- once (the lowest), and the rest busy; an enqueue takes one idle slot
-- and marks it busy. A row per worker rather than a count per server:
-- the server marking a slot idle again after its job locks only that
-- row, and enqueues meanwhile take the others (they pass over locked
-- rows). Rows go with their server (ON DELETE CASCADE): a server
-- declared dead or gone is handed nothing, and jobs handed to it just
-- before are recovered like its other jobs in processing.
--
-- Safe while servers of the previous release run: a new table. They
-- write no row here, so nothing is handed to them, and their enqueues
-- hand nothing off.

CREATE TABLE idle_workers (
    server text    NOT NULL REFERENCES servers (name) ON DELETE CASCADE,
    slot   integer NOT NULL,
    idle   boolean NOT NULL DEFAULT false,
    PRIMARY KEY (server, slot)
);
