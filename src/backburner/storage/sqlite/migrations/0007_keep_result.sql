-- Whether the server keeps what a job's function returns, when the
-- job's options say so: 1 keep, 0 do not. NULL (most jobs) leaves it to
-- the job function's declaration. (No semicolon in comments here: the
-- migration runner splits scripts on them.)
--
-- Safe while servers of the previous release run: they never read the
-- column, so they keep the result of a job whose options said not to.
ALTER TABLE jobs ADD COLUMN keep_result INTEGER;
