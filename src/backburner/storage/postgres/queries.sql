-- The statements of PostgresStorage, one per "-- name:" block.
-- They run with search_path set to the storage's schema; placeholders
-- are psycopg's named ones. Every statement that moves jobs between
-- states keeps the four things together: the job row, a history row,
-- the queue entry and the counters. A job's creation entry is the
-- exception: its row holds it (created_state, created_reason and
-- created_at; see migration 0005 and get_history).

-- name: create_jobs
-- The jobs come as one JSON array of arrays (function, arguments,
-- queue, state, reason, created_at, scheduled_at, timeout, unique_key,
-- mutex, mutex_limit, keep_result), and their parameters as one of
-- (position, name, value): one text parameter each, where arrays of a thousand values
-- per column cost the client more than the statement costs the server.
-- A job whose created_at is null was created at the "created" moment,
-- which most jobs of a call share: parsed once, not once per job.
-- Ids are drawn in the order the jobs were given (ordinality), so that
-- history, queue entries and parameters can refer to them in this same
-- statement, and the ids come back in that order. No history row: the
-- creation entry is kept on the job row (created_state, created_reason).
-- The sequence is looked up once, in a sub-select (an InitPlan): called
-- per row, pg_get_serial_sequence and the cast to regclass were a
-- catalog lookup per job, a quarter of the statement's time.
WITH new AS (
    SELECT nextval((SELECT pg_get_serial_sequence('jobs', 'id')::regclass))
               AS id,
           j->>0 AS function, j->>1 AS arguments, j->>2 AS queue,
           j->>3 AS state, j->>4 AS reason,
           coalesce((j->>5)::timestamptz, %(created)s::timestamptz)
               AS created_at,
           (j->>6)::timestamptz AS scheduled_at,
           (j->>7)::float8 AS timeout, j->>8 AS unique_key,
           j->>9 AS mutex, (j->>10)::integer AS mutex_limit,
           (j->>11)::boolean AS keep_result, position
    FROM jsonb_array_elements(%(jobs)s::jsonb) WITH ORDINALITY
        AS e (j, position)
    ORDER BY position
), inserted AS (
    INSERT INTO jobs (id, function, arguments, queue, state, reason,
                      created_at, state_changed_at, scheduled_at, timeout,
                      unique_key, mutex, mutex_limit, keep_result,
                      created_state, created_reason)
    SELECT id, function, arguments, queue, state, reason, created_at,
           created_at, scheduled_at, timeout, unique_key, mutex,
           mutex_limit, keep_result, state, reason
    FROM new
), queued AS (
    INSERT INTO job_queue (job_id, queue)
    SELECT id, queue FROM new WHERE state = 'enqueued' ORDER BY id
), parameters AS (
    INSERT INTO job_parameters (job_id, name, value)
    SELECT new.id, p.j->>1, p.j->>2
    FROM jsonb_array_elements(%(parameters)s::jsonb) AS p (j)
    JOIN new ON new.position = (p.j->>0)::bigint
)
SELECT id FROM new ORDER BY position;

-- name: create_job_once
-- A whole enqueue in one statement, run outside a transaction (one round
-- trip): the job row (which holds its creation entry, as in
-- create_jobs), its queue entry, parameters, the counter delta and the
-- NOTIFY. The job comes as plain parameters, its parameters as one JSON
-- array of (name, value), and the NOTIFY payload as one text (NULL: no
-- NOTIFY). The id was reserved earlier from the jobs sequence, so a
-- second run of the statement (a retry after a lost reply whose first
-- run committed) finds its row and writes nothing; then own_job tells
-- whether that row is this call's own. Returns how many jobs it wrote
-- (0 or 1) and reserves the id of the next call. The counter row is the
-- only lock here that another transaction may hold; see add_counts.
-- create_job_handoff is the same enqueue that may also hand the job to
-- an idle server; this one is for when none is likely to be found.
-- Run with positional parameters (see queries.positional).
WITH inserted AS (
    INSERT INTO jobs (id, function, arguments, queue, state, reason,
                      created_at, state_changed_at, scheduled_at, timeout,
                      mutex, mutex_limit, keep_result, created_state,
                      created_reason)
    VALUES (%(id)s::bigint, %(function)s::text, %(arguments)s::text,
            %(queue)s::text, %(state)s::text, %(reason)s::text,
            %(created_at)s::timestamptz, %(created_at)s::timestamptz,
            %(scheduled_at)s::timestamptz, %(timeout)s::float8,
            %(mutex)s::text, %(mutex_limit)s::integer,
            %(keep_result)s::boolean, %(state)s::text, %(reason)s::text)
    ON CONFLICT (id) DO NOTHING
    RETURNING id, queue, state
), queued AS (
    INSERT INTO job_queue (job_id, queue)
    SELECT id, queue FROM inserted WHERE state = 'enqueued'
), parameters AS (
    INSERT INTO job_parameters (job_id, name, value)
    SELECT i.id, p.j->>0, p.j->>1
    FROM jsonb_array_elements(%(parameters)s::jsonb) AS p (j), inserted AS i
), counted AS (
    INSERT INTO job_counters (state, queue, shard, count)
    SELECT state, queue, %(shard)s::smallint, 1
    FROM inserted
    ON CONFLICT (state, queue, shard)
    DO UPDATE SET count = job_counters.count + excluded.count
), notified AS (
    SELECT pg_notify(%(channel)s::text, %(payload)s::text)
    FROM inserted
    WHERE %(payload)s::text IS NOT NULL
)
SELECT (SELECT count(*) FROM inserted),
       nextval(pg_get_serial_sequence('jobs', 'id')),
       (SELECT count(*) FROM notified),  -- referenced, or it never runs
       NULL::text;  -- handed to no server (see create_job_handoff)

-- name: create_job_handoff
-- create_job_once, and the hand-off: it also names the server the job
-- was handed to (NULL: none). Its extra steps cost the enqueue about a
-- tenth more when there is no idle worker to find (relations opened,
-- locks, a bigger plan), so the storage runs create_job_once instead for
-- a moment after an enqueue here handed nothing off.
--
-- The hand-off: an enqueued job without a mutex, on a queue with no job
-- waiting (so that it cannot overtake one), goes straight to an idle
-- worker of a server that takes that queue and heartbeat lately (see
-- idle_workers): written in processing, held by that server, with its
-- history row, and the NOTIFY carries the job to the server instead of
-- naming the queue. The worker's row is locked with SKIP LOCKED: an
-- enqueue never waits for a server's fetch or another enqueue; it finds
-- another idle worker or queues the job. A second run of the statement
-- hands nothing off.
--
-- A server is handed jobs only while its process holds its lock (see
-- server_lock): a server killed while idle is passed over at once, not
-- only once its heartbeat is old, when its jobs would wait for it to be
-- declared dead. Where the shared lock can be had, no session holds the
-- server's; the shared lock taken then lasts until this commit and
-- keeps nothing else out.
-- Run with positional parameters (see queries.positional).
WITH target AS (
    SELECT w.server, w.slot
    FROM idle_workers AS w
    JOIN servers AS s ON s.name = w.server
    WHERE %(payload)s::text IS NOT NULL
      AND %(mutex)s::text IS NULL
      AND w.idle
      AND %(queue)s::text = ANY(s.queues)
      AND s.heartbeat_at > statement_timestamp() - interval '5 seconds'
      AND NOT EXISTS (SELECT FROM job_queue WHERE queue = %(queue)s::text)
      AND NOT EXISTS (SELECT FROM jobs WHERE id = %(id)s::bigint)
      AND NOT pg_try_advisory_xact_lock_shared(
              25203, hashtext(current_schema() || '/' || w.server))
    LIMIT 1
    FOR UPDATE OF w SKIP LOCKED
), handed AS (
    UPDATE idle_workers AS w
    SET idle = false
    FROM target AS t
    WHERE w.server = t.server AND w.slot = t.slot
    RETURNING w.server AS name
), inserted AS (
    INSERT INTO jobs (id, function, arguments, queue, state, reason,
                      version, attempt, created_at, state_changed_at,
                      scheduled_at, timeout, server, mutex, mutex_limit,
                      keep_result, created_state, created_reason)
    SELECT %(id)s::bigint, %(function)s::text, %(arguments)s::text,
           %(queue)s::text,
           CASE WHEN h.name IS NULL THEN %(state)s::text
                ELSE 'processing' END,
           CASE WHEN h.name IS NULL THEN %(reason)s::text
                ELSE 'handed to ' || h.name END,
           CASE WHEN h.name IS NULL THEN 1 ELSE 2 END,
           CASE WHEN h.name IS NULL THEN 0 ELSE 1 END,
           %(created_at)s::timestamptz, %(created_at)s::timestamptz,
           %(scheduled_at)s::timestamptz, %(timeout)s::float8, h.name,
           %(mutex)s::text, %(mutex_limit)s::integer,
           %(keep_result)s::boolean, %(state)s::text, %(reason)s::text
    FROM (VALUES (1)) AS one (n)
    LEFT JOIN handed AS h ON true
    ON CONFLICT (id) DO NOTHING
    RETURNING id, queue, state, server
), queued AS (
    INSERT INTO job_queue (job_id, queue)
    SELECT id, queue FROM inserted WHERE state = 'enqueued'
), logged AS (
    INSERT INTO job_history (job_id, state, reason, created_at, data)
    SELECT id, 'processing', 'handed to ' || server,
           %(created_at)s::timestamptz,
           json_build_object('server', server)::text
    FROM inserted
    WHERE server IS NOT NULL
), parameters AS (
    INSERT INTO job_parameters (job_id, name, value)
    SELECT i.id, p.j->>0, p.j->>1
    FROM jsonb_array_elements(%(parameters)s::jsonb) AS p (j), inserted AS i
), counted AS (
    INSERT INTO job_counters (state, queue, shard, count)
    SELECT state, queue, %(shard)s::smallint, 1
    FROM inserted
    ON CONFLICT (state, queue, shard)
    DO UPDATE SET count = job_counters.count + excluded.count
), notified AS (
    -- A hand-off's payload carries what the server needs to start the
    -- job without reading it (the rest follows from the hand-off: see
    -- handoffs.py), unless the job's arguments make it too long for a
    -- NOTIFY, or its keep_result is set (which the payload of servers
    -- of the previous release cannot carry: see migration 0007); then
    -- the server reads the job by its id.
    SELECT pg_notify(
               %(channel)s::text,
               CASE WHEN i.server IS NULL THEN %(payload)s::text
                    WHEN octet_length(whole.payload) <= 7900
                     AND %(keep_result)s::boolean IS NULL
                        THEN whole.payload
                    ELSE json_build_object(
                             'o', %(payload)s::json->>'o',
                             'h', json_build_array(i.server, i.id, i.queue)
                         )::text
               END
           )
    FROM inserted AS i
    LEFT JOIN LATERAL (
        SELECT json_build_object(
                   'o', %(payload)s::json->>'o',
                   'h', json_build_array(
                            i.server, i.id, i.queue,
                            %(function)s::text, %(arguments)s::text,
                            %(created_at)s::timestamptz,
                            %(timeout)s::float8
                        )
               )::text
        WHERE i.server IS NOT NULL
    ) AS whole (payload) ON true
    WHERE %(payload)s::text IS NOT NULL
)
SELECT (SELECT count(*) FROM inserted),
       nextval(pg_get_serial_sequence('jobs', 'id')),
       (SELECT count(*) FROM notified),  -- referenced, or it never runs
       (SELECT server FROM inserted);

-- name: own_job
-- After create_job_once wrote nothing: whether the row holding its id
-- is that call's own (same function, arguments, queue and creation
-- time), written by an earlier run of the same call. If not, the
-- sequence is behind the table and handed out the id of another job,
-- which the caller must not take for its own.
SELECT count(*)
FROM jobs
WHERE id = %(id)s::bigint
  AND function = %(function)s::text
  AND arguments = %(arguments)s::text
  AND queue = %(queue)s::text
  AND created_at = %(created_at)s::timestamptz;

-- name: reserve_job_id
SELECT nextval(pg_get_serial_sequence('jobs', 'id'));

-- name: lock_jobs
-- Locked in id order so that two batches touching the same jobs queue
-- up behind each other instead of deadlocking.
SELECT id, state, queue, version
FROM jobs
WHERE id = ANY(%(ids)b::bigint[])
ORDER BY id
FOR UPDATE;

-- name: unique_holders
-- For each locked job with a unique key, another active job holding the
-- same key (a change that would make the job active is refused).
SELECT j.id, h.id
FROM jobs AS j
JOIN jobs AS h
  ON h.unique_key = j.unique_key
 AND h.id <> j.id
 AND h.state IN ('enqueued', 'scheduled', 'processing')
WHERE j.id = ANY(%(ids)b::bigint[]) AND j.unique_key IS NOT NULL;

-- name: continuation_links
SELECT parent_id, job_id, on_states
FROM job_continuations
WHERE parent_id = %(id)s OR job_id = %(id)s
ORDER BY job_id;

-- name: lock_parent
SELECT state, expires_at FROM jobs WHERE id = %(id)s FOR UPDATE;

-- name: add_continuations
INSERT INTO job_continuations (parent_id, job_id, on_states)
SELECT parent_id, job_id, on_states
FROM unnest(
    %(parents)b::bigint[], %(jobs)b::bigint[], %(on_states)b::text[]
) AS c (parent_id, job_id, on_states);

-- name: lock_unique_key
-- Creators of jobs with the same unique key take turns (until commit).
SELECT pg_advisory_xact_lock(%(class)s, hashtext(%(key)s));

-- name: active_unique_keys
SELECT unique_key, id
FROM jobs
WHERE unique_key = ANY(%(keys)b::text[])
  AND state IN ('enqueued', 'scheduled', 'processing');

-- name: mutex_candidates
SELECT q.job_id, j.mutex, j.mutex_limit
FROM job_queue AS q
JOIN jobs AS j ON j.id = q.job_id
WHERE q.queue = %(queue)s AND j.mutex IS NOT NULL
ORDER BY q.seq
LIMIT %(limit)s;

-- name: lock_mutex
-- Fetchers of jobs with the same mutex take turns (until commit), so
-- that each counts the holders the others committed.
SELECT pg_advisory_xact_lock(%(class)s, hashtext(%(key)s));

-- name: mutex_holders
SELECT mutex, count(*)
FROM jobs
WHERE state = 'processing' AND mutex = ANY(%(keys)b::text[])
GROUP BY mutex;

-- name: fetch_ids
-- As fetch, for the chosen jobs with a mutex.
WITH picked AS (
    SELECT q.job_id, q.seq
    FROM job_queue AS q
    JOIN jobs AS j ON j.id = q.job_id
    WHERE q.job_id = ANY(%(ids)b::bigint[])
    ORDER BY q.seq
    FOR UPDATE OF q, j SKIP LOCKED
), dequeued AS (
    DELETE FROM job_queue
    WHERE job_id = ANY(ARRAY(SELECT job_id FROM picked))
), moved AS (
    UPDATE jobs AS j
    SET state = 'processing',
        reason = %(reason)s,
        version = j.version + 1,
        attempt = j.attempt + 1,
        state_changed_at = %(now)s,
        scheduled_at = NULL,
        server = %(server)s,
        expires_at = NULL
    WHERE j.id = ANY(ARRAY(SELECT job_id FROM picked))
    RETURNING j.id, j.function, j.arguments, j.queue, j.state, j.reason,
              j.version, j.attempt, j.created_at, j.state_changed_at,
              j.scheduled_at, j.server, j.expires_at, j.timeout,
              j.unique_key, j.mutex, j.mutex_limit, j.keep_result
), logged AS (
    INSERT INTO job_history (job_id, state, reason, created_at, data)
    SELECT job_id, 'processing', %(reason)s, %(now)s, %(data)s
    FROM picked
    ORDER BY seq
), advertised AS (
    -- As in fetch, whose count of the workers left idle could not know
    -- these jobs: room is what the fetch left of its limit.
    UPDATE idle_workers AS w
    SET idle = NOT w.idle
    FROM (
        SELECT slot
        FROM idle_workers
        WHERE server = %(server)s
          AND idle <> (slot < CASE WHEN %(heard)s
                                   THEN %(room)s - (SELECT count(*) FROM picked)
                                   ELSE 0 END)
        FOR UPDATE SKIP LOCKED
    ) AS changed
    WHERE w.server = %(server)s AND w.slot = changed.slot
)
SELECT m.id, m.function, m.arguments, m.queue, m.state, m.reason,
       m.version, m.attempt, m.created_at, m.state_changed_at,
       m.scheduled_at, m.server, m.expires_at, m.timeout,
       m.unique_key, m.mutex, m.mutex_limit, m.keep_result
FROM moved AS m
JOIN picked AS p ON p.job_id = m.id
ORDER BY p.seq;

-- name: change_jobs
-- A batch of changes as one compare-and-set, for the common batch (a
-- server's outcomes): each job changed at most once, none from
-- enqueued (so no queue entry to drop), none that could clash with a
-- unique key. The jobs are locked in id order, as by lock_jobs; each
-- changes when its locked state is one of from_states (comma-separated)
-- and its version is the one expected (NULL: any). The history rows and
-- the queue entries of jobs moved to enqueued are written by the same
-- statement. Returns every job found: id, state and queue before the
-- change, and whether the change was made.
WITH c AS (
    SELECT *
    FROM unnest(
        %(ids)b::bigint[], %(from_states)b::text[], %(versions)b::integer[],
        %(states)b::text[], %(reasons)b::text[], %(at)b::timestamptz[],
        %(scheduled)b::timestamptz[], %(expires)b::timestamptz[],
        %(resets)b::boolean[], %(data)b::text[]
    ) WITH ORDINALITY AS c (id, from_states, version, state, reason, at,
                            scheduled_at, expires_at, reset_attempt, data,
                            position)
), locked AS (
    SELECT id, state, queue, version
    FROM jobs
    WHERE id = ANY(%(ids)b::bigint[])
    ORDER BY id
    FOR UPDATE
), updated AS (
    UPDATE jobs AS j
    SET state = c.state,
        reason = c.reason,
        version = j.version + 1,
        state_changed_at = c.at,
        scheduled_at = c.scheduled_at,
        expires_at = c.expires_at,
        server = NULL,
        attempt = CASE WHEN c.reset_attempt THEN 0 ELSE j.attempt END
    FROM c
    JOIN locked AS l ON l.id = c.id
    WHERE j.id = c.id
      AND l.state = ANY(string_to_array(c.from_states, ','))
      AND (c.version IS NULL OR l.version = c.version)
    RETURNING j.id
), logged AS (
    INSERT INTO job_history (job_id, state, reason, created_at, data)
    SELECT c.id, c.state, c.reason, c.at, c.data
    FROM c
    JOIN updated AS u ON u.id = c.id
    ORDER BY c.position
), requeued AS (
    INSERT INTO job_queue (job_id, queue)
    SELECT c.id, l.queue
    FROM c
    JOIN updated AS u ON u.id = c.id
    JOIN locked AS l ON l.id = c.id
    WHERE c.state = 'enqueued'
    ORDER BY c.position
)
SELECT l.id, l.state, l.queue, u.id IS NOT NULL
FROM locked AS l
LEFT JOIN updated AS u ON u.id = l.id;

-- name: continuations_of
-- After change_jobs, as a statement of its own: its snapshot is taken
-- once the jobs are locked, so it sees a continuation committed by a
-- creator that held a parent's lock (see create_continuations).
SELECT parent_id, job_id, on_states
FROM job_continuations
WHERE parent_id = ANY(%(ids)b::bigint[])
ORDER BY parent_id, job_id;

-- name: update_jobs
-- The final row of each job changed by one apply_changes batch; returns
-- the continuations of those jobs. This statement starts once lock_jobs
-- holds the locks, so its snapshot sees a continuation committed by a
-- creator that held a parent's lock (see create_continuations).
WITH updated AS (
UPDATE jobs AS j
SET state = c.state,
    reason = c.reason,
    version = j.version + c.steps,
    state_changed_at = c.at,
    scheduled_at = c.scheduled_at,
    expires_at = c.expires_at,
    server = NULL,
    attempt = CASE WHEN c.reset_attempt THEN 0 ELSE j.attempt END
FROM unnest(
    %(ids)b::bigint[], %(states)b::text[], %(reasons)b::text[],
    %(steps)b::integer[], %(at)b::timestamptz[],
    %(scheduled)b::timestamptz[], %(expires)b::timestamptz[],
    %(resets)b::boolean[]
) AS c (id, state, reason, steps, at, scheduled_at, expires_at,
        reset_attempt)
WHERE j.id = c.id
RETURNING j.id
)
SELECT parent_id, job_id, on_states
FROM job_continuations
WHERE parent_id = ANY(ARRAY(SELECT id FROM updated))
ORDER BY parent_id, job_id;

-- name: add_history
INSERT INTO job_history (job_id, state, reason, created_at, data)
SELECT job_id, state, reason, at, data
FROM unnest(
    %(ids)b::bigint[], %(states)b::text[], %(reasons)b::text[],
    %(at)b::timestamptz[], %(data)b::text[]
) WITH ORDINALITY AS h (job_id, state, reason, at, data, position)
ORDER BY position;

-- name: dequeue
DELETE FROM job_queue WHERE job_id = ANY(%(ids)b::bigint[]);

-- name: enqueue
-- Each job goes to the back of its queue, in the order given.
INSERT INTO job_queue (job_id, queue)
SELECT job_id, queue
FROM unnest(%(ids)b::bigint[], %(queues)b::text[])
    WITH ORDINALITY AS e (job_id, queue, position)
ORDER BY position;

-- name: add_counts
-- Last statement of a transaction, rows in (state, queue) order: see
-- the job_counters table.
INSERT INTO job_counters (state, queue, shard, count)
SELECT state, queue, %(shard)s, delta
FROM unnest(%(states)b::text[], %(queues)b::text[], %(deltas)b::bigint[])
    AS d (state, queue, delta)
ORDER BY state, queue
ON CONFLICT (state, queue, shard)
DO UPDATE SET count = job_counters.count + excluded.count;

-- name: add_outcomes
-- After add_counts, rows in (state, hour) order: see job_outcomes.
INSERT INTO job_outcomes (state, hour, shard, count)
SELECT state, hour, %(shard)s, delta
FROM unnest(
    %(states)b::text[], %(hours)b::timestamptz[], %(deltas)b::bigint[]
) AS d (state, hour, delta)
ORDER BY state, hour
ON CONFLICT (state, hour, shard)
DO UPDATE SET count = job_outcomes.count + excluded.count;

-- name: outcome_counts
SELECT state, hour, sum(count)::bigint
FROM job_outcomes
WHERE hour >= %(since)s
GROUP BY state, hour
HAVING sum(count) <> 0
ORDER BY hour, state;

-- name: notify
SELECT pg_notify(%(channel)s, payload)
FROM unnest(%(payloads)b::text[]) AS p (payload);

-- name: fetch
-- One statement per queue: heartbeat the server, lock the oldest queue
-- entries whose job rows are free (SKIP LOCKED: rows another fetch or a
-- state change holds are passed over, never waited for), move the jobs
-- to processing, log the change, drop the queue entries. An empty queue
-- writes nothing (no heartbeat either): polling idle queues costs no
-- commit. The head of the queue is walked once: after a burst of
-- fetches, it is where deleted entries wait for vacuum.
--
-- With count true the statement also moves the counters: it then runs
-- on its own, outside a transaction (one round trip), and the counter
-- rows, written last, are its only locks that it may wait for. Inside a
-- transaction (count false) the counters follow at its end, with every
-- other counter delta of it (see add_counts).
WITH picked AS (
    SELECT q.job_id, q.seq
    FROM job_queue AS q
    JOIN jobs AS j ON j.id = q.job_id
    -- Jobs with a mutex are taken by fetch_mutex, which counts holders.
    -- The test is wrapped in CASE on purpose: with no statistics on
    -- jobs.mutex (a table just filled by a burst, before autoanalyze;
    -- a schema just migrated) the planner takes "mutex IS NULL" for
    -- one row in 200 and sorts the whole queue to find 50 of them (1 s
    -- per fetch with 300,000 queued); an opaque test keeps the scan in
    -- queue order that stops at the limit.
    WHERE q.queue = %(queue)s
      AND CASE WHEN j.mutex IS NULL THEN true ELSE false END
    ORDER BY q.seq
    LIMIT %(limit)s
    FOR UPDATE OF q, j SKIP LOCKED
), alive AS (
    -- The heartbeat, written only when there are jobs to take: an
    -- unregistered server takes none (the rows it locked are let go at
    -- the end of the statement).
    UPDATE servers SET heartbeat_at = %(now)s
    WHERE name = %(server)s AND EXISTS (SELECT FROM picked)
    RETURNING name
), dequeued AS (
    DELETE FROM job_queue
    WHERE job_id = ANY(ARRAY(SELECT job_id FROM picked))
      AND EXISTS (SELECT FROM alive)
), moved AS (
    UPDATE jobs AS j
    SET state = 'processing',
        reason = %(reason)s,
        version = j.version + 1,
        attempt = j.attempt + 1,
        state_changed_at = %(now)s,
        scheduled_at = NULL,
        server = %(server)s,
        expires_at = NULL
    WHERE j.id = ANY(ARRAY(SELECT job_id FROM picked))
      AND EXISTS (SELECT FROM alive)
    -- Columns by name, never *: a prepared statement whose result type
    -- changes fails, and a later migration may add columns to jobs
    -- while this release still runs.
    RETURNING j.id, j.function, j.arguments, j.queue, j.state, j.reason,
              j.version, j.attempt, j.created_at, j.state_changed_at,
              j.scheduled_at, j.server, j.expires_at, j.timeout,
              j.unique_key, j.mutex, j.mutex_limit, j.keep_result
), logged AS (
    INSERT INTO job_history (job_id, state, reason, created_at, data)
    SELECT job_id, 'processing', %(reason)s, %(now)s, %(data)s
    FROM picked
    WHERE EXISTS (SELECT FROM alive)
    ORDER BY seq
), advertised AS (
    -- How many jobs an enqueue may hand this server straight away (see
    -- idle_workers): its lowest slots, as many as this fetch leaves of
    -- its limit, are marked idle and the others busy. Only rows that
    -- change are written: polling an empty queue writes nothing, and a
    -- server done with a handed job marks that one slot idle again.
    -- None is marked idle while the server's storage cannot hear of hand
    -- offs (heard false: its listening connection is down), or jobs
    -- handed to it would wait for its reconcile loop.
    -- Rows locked by an enqueue taking them right now are passed over
    -- (that enqueue marks them busy, and the server fetches again once
    -- it hears of the job), so that a fetch never waits for an enqueue
    -- that may be waiting for this fetch's counter rows.
    UPDATE idle_workers AS w
    SET idle = NOT w.idle
    FROM (
        SELECT slot
        FROM idle_workers
        WHERE server = %(server)s
          AND idle <> (slot < CASE WHEN %(heard)s
                                   THEN %(limit)s - (SELECT count(*) FROM picked)
                                   ELSE 0 END)
        FOR UPDATE SKIP LOCKED
    ) AS changed
    WHERE w.server = %(server)s AND w.slot = changed.slot
), counted AS (
    INSERT INTO job_counters (state, queue, shard, count)
    SELECT d.state, %(queue)s, %(shard)s, d.sign * m.taken
    FROM (SELECT count(*) AS taken FROM moved) AS m,
         (VALUES ('enqueued', -1), ('processing', 1)) AS d (state, sign)
    WHERE %(count)s AND m.taken > 0
    ORDER BY d.state
    ON CONFLICT (state, queue, shard)
    DO UPDATE SET count = job_counters.count + excluded.count
)
SELECT m.id, m.function, m.arguments, m.queue, m.state, m.reason,
       m.version, m.attempt, m.created_at, m.state_changed_at,
       m.scheduled_at, m.server, m.expires_at, m.timeout,
       m.unique_key, m.mutex, m.mutex_limit, m.keep_result, p.seq
FROM moved AS m
JOIN picked AS p ON p.job_id = m.id
UNION ALL
-- A last row with no job (id NULL) when the batch is not full and jobs
-- with a mutex wait on this queue (a probe on a partial index): then
-- fetch_mutex looks at them. No extra round trip either way.
SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
       NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
WHERE EXISTS (SELECT FROM servers WHERE name = %(server)s)
  AND (SELECT count(*) FROM moved) < %(limit)s
  AND EXISTS (
      SELECT FROM jobs
      WHERE state = 'enqueued' AND mutex IS NOT NULL
        AND queue = %(queue)s
  )
ORDER BY 19 NULLS LAST;

-- name: walk_queue_in_order
-- Sent just before fetch, in its transaction (or the implicit one of its
-- pipeline), until whose end the settings last. Without statistics on
-- job_queue (a burst of enqueues before autoanalyze runs, or autovacuum
-- off) the planner takes "queue = ..." for one row in 200, expects a
-- dozen entries where thousands wait, and reads, joins and sorts the
-- whole queue on every fetch: 4.6 ms for 50 jobs with 2,000 queued and
-- 23 ms with 10,000, against 1.3-1.7 ms walking the queue in order.
-- Without bitmap and sequential scans that walk is the plan left; past
-- about 100,000 queued the planner picks it anyway.
SELECT set_config('enable_bitmapscan', 'off', true),
       set_config('enable_seqscan', 'off', true);

-- name: fetch_connection_settings
-- The settings of walk_queue_in_order for a whole session: that of the
-- fetch connection, which runs nothing but fetch (see
-- fetch_connection.py), so that each of its fetches is one statement.
SELECT set_config('enable_bitmapscan', 'off', false),
       set_config('enable_seqscan', 'off', false);

-- name: promote
-- Due scheduled jobs, oldest due first; SKIP LOCKED lets every server
-- promote at once without two of them moving the same job.
WITH due AS (
    SELECT id, scheduled_at
    FROM jobs
    WHERE state = 'scheduled' AND scheduled_at <= %(now)s
    ORDER BY scheduled_at
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
), moved AS (
    UPDATE jobs AS j
    SET state = 'enqueued',
        reason = %(reason)s,
        version = j.version + 1,
        state_changed_at = %(now)s,
        scheduled_at = NULL,
        server = NULL,
        expires_at = NULL
    WHERE j.id = ANY(ARRAY(SELECT id FROM due))
    RETURNING j.id, j.queue
), logged AS (
    INSERT INTO job_history (job_id, state, reason, created_at)
    SELECT id, 'enqueued', %(reason)s, %(now)s
    FROM due
    ORDER BY scheduled_at, id
), queued AS (
    INSERT INTO job_queue (job_id, queue)
    SELECT m.id, m.queue
    FROM moved AS m
    JOIN due AS d ON d.id = m.id
    ORDER BY d.scheduled_at, m.id
)
SELECT queue, count(*) FROM moved GROUP BY queue;

-- name: delete_silent_servers
DELETE FROM servers WHERE heartbeat_at < %(limit)s;

-- name: recover
-- Jobs in processing whose server is not registered (any more). SKIP
-- LOCKED: a job whose worker is writing its outcome right now is left
-- to that worker; if the outcome is refused, the next round finds it.
-- They go back ahead of their queue's head, in id order: they were
-- delivered already, and behind a backlog they would wait for all of
-- it to drain first.
WITH orphans AS (
    SELECT id, server
    FROM jobs AS j
    WHERE state = 'processing'
      AND NOT EXISTS (SELECT FROM servers AS s WHERE s.name = j.server)
    ORDER BY id
    FOR UPDATE SKIP LOCKED
), moved AS (
    UPDATE jobs AS j
    SET state = 'enqueued',
        reason = %(reason)s,
        version = j.version + 1,
        state_changed_at = %(now)s,
        scheduled_at = NULL,
        server = NULL,
        expires_at = NULL
    WHERE j.id = ANY(ARRAY(SELECT id FROM orphans))
    RETURNING j.id, j.queue
), logged AS (
    INSERT INTO job_history (job_id, state, reason, created_at, data)
    SELECT id, 'enqueued', %(reason)s, %(now)s,
           json_build_object('server', server)::text
    FROM orphans
    ORDER BY id
), queued AS (
    INSERT INTO job_queue (job_id, queue, seq) OVERRIDING SYSTEM VALUE
    SELECT m.id, m.queue,
           coalesce(
               (SELECT min(q.seq) FROM job_queue AS q WHERE q.queue = m.queue),
               1
           ) - row_number() OVER (PARTITION BY m.queue ORDER BY m.id DESC)
    FROM moved AS m
)
SELECT id, queue FROM moved ORDER BY id;

-- name: held_jobs
-- One server's jobs in processing, through the partial index
-- jobs_processing (server) WHERE state = 'processing'.
SELECT id, version, state_changed_at
FROM jobs
WHERE state = 'processing' AND server = %(server)s;

-- name: expire
-- A batch of expired jobs, with their history, parameters and any queue
-- entry. SKIP LOCKED: servers expiring at the same time share the work.
WITH doomed AS (
    SELECT id
    FROM jobs
    WHERE expires_at <= %(now)s
    ORDER BY expires_at
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
), gone AS (
    DELETE FROM jobs
    WHERE id = ANY(ARRAY(SELECT id FROM doomed))
    RETURNING id, state, queue
), history AS (
    DELETE FROM job_history
    WHERE job_id = ANY(ARRAY(SELECT id FROM doomed))
), parameters AS (
    DELETE FROM job_parameters
    WHERE job_id = ANY(ARRAY(SELECT id FROM doomed))
), queue AS (
    DELETE FROM job_queue
    WHERE job_id = ANY(ARRAY(SELECT id FROM doomed))
), continuations AS (
    DELETE FROM job_continuations
    WHERE parent_id = ANY(ARRAY(SELECT id FROM doomed))
       OR job_id = ANY(ARRAY(SELECT id FROM doomed))
)
SELECT state, queue, count(*) FROM gone GROUP BY state, queue;

-- name: counts
SELECT state, queue, sum(count)::bigint
FROM job_counters
GROUP BY state, queue
HAVING sum(count) <> 0
ORDER BY state, queue;

-- name: get_job
SELECT id, function, arguments, queue, state, reason, version, attempt,
       created_at, state_changed_at, scheduled_at, server, expires_at,
       timeout, unique_key, mutex, mutex_limit, keep_result
FROM jobs
WHERE id = %(id)s;

-- name: get_history
-- The creation entry first, from the job row (id NULL sorts first), when
-- the row holds it; a job created before migration 0005, or by a server
-- of an older release, has it in job_history instead. One statement,
-- so one snapshot: an expiry or a first change cannot fall in between.
SELECT state, reason, created_at, data
FROM (
    SELECT NULL::bigint AS id, created_state AS state,
           created_reason AS reason, created_at, '{}' AS data
    FROM jobs
    WHERE id = %(id)s AND created_state IS NOT NULL
    UNION ALL
    SELECT id, state, reason, created_at, data
    FROM job_history
    WHERE job_id = %(id)s
) AS h
ORDER BY id NULLS FIRST;

-- name: job_states
SELECT id, state, version FROM jobs WHERE id = ANY(%(ids)b::bigint[]);

-- name: set_parameter
INSERT INTO job_parameters (job_id, name, value)
SELECT id, %(name)s, %(value)s FROM jobs WHERE id = %(id)s
ON CONFLICT (job_id, name) DO UPDATE SET value = excluded.value
RETURNING 1;

-- name: set_parameters
-- Many jobs' parameters at once (the progress a server flushes); rows
-- of jobs that are gone are skipped. Rows are written in (job, name)
-- order so that two flushes touching the same jobs cannot deadlock.
INSERT INTO job_parameters (job_id, name, value)
SELECT p.job_id, p.name, p.value
FROM unnest(
    %(ids)b::bigint[], %(names)b::text[], %(values)b::text[]
) AS p (job_id, name, value)
JOIN jobs AS j ON j.id = p.job_id
ORDER BY p.job_id, p.name
ON CONFLICT (job_id, name) DO UPDATE SET value = excluded.value
RETURNING job_id;

-- name: get_parameters
SELECT name, value FROM job_parameters WHERE job_id = %(id)s ORDER BY name;

-- name: announce_server
INSERT INTO servers (name, queues, workers, started_at, heartbeat_at)
VALUES (%(name)s, %(queues)s, %(workers)s, %(started)s, %(heartbeat)s)
ON CONFLICT (name) DO UPDATE
SET queues = excluded.queues,
    workers = excluded.workers,
    started_at = excluded.started_at,
    heartbeat_at = excluded.heartbeat_at;

-- name: heartbeat
UPDATE servers SET heartbeat_at = %(now)s WHERE name = %(name)s RETURNING 1;

-- name: remove_server
DELETE FROM servers WHERE name = %(name)s;

-- name: list_servers
SELECT name, queues, workers, started_at, heartbeat_at
FROM servers
ORDER BY name;

-- name: save_recurring
-- An update keeps the next occurrence while the schedule is unchanged
-- (and the recurring job not stopped), so that it never skips or
-- repeats one; it keeps paused as it was.
INSERT INTO recurring_jobs (id, function, arguments, queue, cron,
                            time_zone, missed, timeout, next_run_at,
                            created_at, updated_at)
VALUES (%(id)s, %(function)s, %(arguments)s, %(queue)s, %(cron)s,
        %(time_zone)s, %(missed)s, %(timeout)s,
        %(next_run_at)s::timestamptz, %(now)s, %(now)s)
ON CONFLICT (id) DO UPDATE
SET next_run_at = CASE
        WHEN recurring_jobs.cron = excluded.cron
         AND recurring_jobs.time_zone = excluded.time_zone
         AND recurring_jobs.next_run_at IS NOT NULL
        THEN recurring_jobs.next_run_at
        ELSE excluded.next_run_at
    END,
    function = excluded.function,
    arguments = excluded.arguments,
    queue = excluded.queue,
    cron = excluded.cron,
    time_zone = excluded.time_zone,
    missed = excluded.missed,
    timeout = excluded.timeout,
    error = NULL,
    failures = 0,
    version = recurring_jobs.version + 1,
    updated_at = excluded.updated_at;

-- name: get_recurring
SELECT r.id, r.function, r.arguments, r.queue, r.cron, r.time_zone,
       r.missed, r.timeout, r.paused, r.next_run_at, r.last_run_at,
       r.last_job_id, j.state, r.error, r.failures, r.version,
       r.created_at, r.updated_at
FROM recurring_jobs AS r
LEFT JOIN jobs AS j ON j.id = r.last_job_id
WHERE r.id = %(id)s;

-- name: list_recurring
SELECT r.id, r.function, r.arguments, r.queue, r.cron, r.time_zone,
       r.missed, r.timeout, r.paused, r.next_run_at, r.last_run_at,
       r.last_job_id, j.state, r.error, r.failures, r.version,
       r.created_at, r.updated_at
FROM recurring_jobs AS r
LEFT JOIN jobs AS j ON j.id = r.last_job_id
ORDER BY r.id;

-- name: due_recurring
SELECT r.id, r.function, r.arguments, r.queue, r.cron, r.time_zone,
       r.missed, r.timeout, r.paused, r.next_run_at, r.last_run_at,
       r.last_job_id, j.state, r.error, r.failures, r.version,
       r.created_at, r.updated_at
FROM recurring_jobs AS r
LEFT JOIN jobs AS j ON j.id = r.last_job_id
WHERE NOT r.paused AND r.next_run_at <= %(now)s
ORDER BY r.next_run_at
LIMIT %(limit)s;

-- name: next_recurring_due
SELECT min(next_run_at)
FROM recurring_jobs
WHERE NOT paused AND next_run_at IS NOT NULL;

-- name: remove_recurring
DELETE FROM recurring_jobs WHERE id = %(id)s RETURNING 1;

-- name: pause_recurring
UPDATE recurring_jobs
SET paused = true, version = version + 1, updated_at = %(now)s
WHERE id = %(id)s
RETURNING 1;

-- name: recurring_exists
SELECT 1 FROM recurring_jobs WHERE id = %(id)s;

-- name: resume_recurring
-- Only a paused or stopped recurring job changes; an active one keeps
-- its next occurrence.
UPDATE recurring_jobs
SET paused = false,
    next_run_at = %(next_run_at)s::timestamptz,
    error = NULL,
    failures = 0,
    version = version + 1,
    updated_at = %(now)s
WHERE id = %(id)s AND (paused OR next_run_at IS NULL);

-- name: claim_recurring
-- The compare-and-set of a firing: under READ COMMITTED a second server
-- updating the same row waits for the first to commit, then finds the
-- version moved on and updates nothing.
UPDATE recurring_jobs
SET next_run_at = %(next_run_at)s::timestamptz,
    error = %(error)s,
    failures = %(failures)s,
    version = version + 1,
    updated_at = %(at)s,
    last_run_at = coalesce(%(last_run_at)s::timestamptz, last_run_at)
WHERE id = %(id)s AND version = %(version)s
RETURNING 1;

-- name: set_recurring_last_job
UPDATE recurring_jobs SET last_job_id = %(job_id)s WHERE id = %(id)s;

-- name: announce_idle
-- With announce_server: the server's rows in idle_workers, one per
-- worker, all busy until its first fetch says how many jobs it would
-- take.
WITH dropped AS (
    -- Slots beyond its workers, from a run with more of them.
    DELETE FROM idle_workers
    WHERE server = %(name)s AND slot >= %(workers)s
)
INSERT INTO idle_workers (server, slot, idle)
SELECT %(name)s, slot, false
FROM generate_series(0, %(workers)s - 1) AS g (slot)
ON CONFLICT (server, slot) DO UPDATE SET idle = false;

-- name: server_lock
-- Held by a server's process for as long as its fetch connection is
-- open: proof to enqueues that it is there to hear of the jobs they
-- hand it (see create_job_handoff). The first key is "bs" in ASCII (see
-- schema.LOCK_CLASS). A "try": two live servers whose names hash alike
-- must not block each other (the second is then handed nothing).
SELECT pg_try_advisory_lock(
    25203, hashtext(current_schema() || '/' || %(server)s));

-- name: end_handoffs
-- The server takes no more hand-offs (see idle_workers).
UPDATE idle_workers SET idle = false WHERE server = %(server)s AND idle;

-- name: handed_jobs
-- Jobs handed to a server by their enqueue (see create_job_handoff) that
-- the server heard of, as fetch returns them: those still in processing
-- under its name (one deleted or requeued meanwhile is not).
SELECT id, function, arguments, queue, state, reason, version, attempt,
       created_at, state_changed_at, scheduled_at, server, expires_at,
       timeout, unique_key, mutex, mutex_limit, keep_result, NULL::bigint
FROM jobs
WHERE id = ANY(%(ids)s::bigint[])
  AND state = 'processing'
  AND server = %(server)s
ORDER BY id;
