-- Idle servers, so that an enqueue can hand its job straight to one
-- (see create_job_once): the job is then written in processing, held by
-- that server, and the server is told the job's id in the NOTIFY. The
-- server starts it without a fetch: one durable commit on the way from
-- enqueue to start instead of two.
--
-- A server's row says on which queues it takes jobs and how many more
-- it would start at once (free). The server writes free from its fetch
-- (what its last fetch left of its limit, when that changed); each hand
-- off takes one. Rows go with their server (ON DELETE CASCADE): a server
-- declared dead or gone is handed nothing, and jobs handed to it just
-- before are recovered like its other jobs in processing.
--
-- Safe while servers of the previous release run: a new table. They
-- write no row here, so nothing is handed to them, and their enqueues
-- hand nothing off.

CREATE TABLE idle_servers (
    name   text    PRIMARY KEY REFERENCES servers (name) ON DELETE CASCADE,
    queues text[]  NOT NULL,
    free   integer NOT NULL DEFAULT 0
);
