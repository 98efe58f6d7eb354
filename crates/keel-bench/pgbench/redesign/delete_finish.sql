-- Reference, not a design (session 14), the finish only: run.sh puts it after current_run.sql's
-- claim. It deletes the job and keeps no history, as graphile-worker does: what dropping history
-- would buy at the database.
DELETE FROM keel_jobs WHERE state = 'processing' AND locked_by = 'w' || :worker;
