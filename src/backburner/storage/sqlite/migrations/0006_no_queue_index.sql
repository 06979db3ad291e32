-- Every enqueue wrote an entry of jobs_by_queue, for one dashboard page
-- only (a queue's jobs in every state). That page now reads the newest
-- jobs of each state through jobs_by_state_queue and keeps the newest.

DROP INDEX jobs_by_queue;
