-- A job's creation history entry kept on its row instead of in
-- job_history: an enqueue writes one row fewer (and one index entry of
-- job_history_by_job fewer), and no later change has to write it either.
-- get_history puts the entry first, before the job_history rows.
--
-- created_state and created_reason are the state and reason the job was
-- created with; with created_at, they are the whole entry (its data is
-- always empty). They are set by this release's creates only. A job
-- whose created_state is NULL (created before this migration, or by a
-- server of the previous release while both run) has its creation row in
-- job_history, as before.
--
-- Safe while servers of the previous release run: new nullable columns
-- with no default change no stored row. Their creates leave the columns
-- NULL and write the creation row as they always did; their changes to
-- a job created here add rows to job_history and never touch these
-- columns, so the entry survives. Their get_history shows such a job
-- without its creation entry until they are upgraded.

ALTER TABLE jobs ADD COLUMN created_state text;
ALTER TABLE jobs ADD COLUMN created_reason text;
