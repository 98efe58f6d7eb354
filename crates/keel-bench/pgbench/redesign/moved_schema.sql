-- Redesign prototype (session 14): today's keel_jobs holding only unfinished jobs, and an
-- append-only keel_jobs_done for the history, indexed by BRIN only (ids are UUIDv7, so a block
-- range covers a narrow id range) or, with -v pk=1, by a primary key. run.sh runs it after
-- current_schema.sql.
DROP TABLE IF EXISTS keel_jobs_done;
CREATE TABLE keel_jobs_done (LIKE keel_jobs INCLUDING DEFAULTS);
\if :{?pk}
ALTER TABLE keel_jobs_done ADD PRIMARY KEY (id);
\else
CREATE INDEX keel_jobs_done_id_brin ON keel_jobs_done USING brin (id);
\endif
CREATE INDEX keel_jobs_done_fin_brin ON keel_jobs_done USING brin (finished_at);
