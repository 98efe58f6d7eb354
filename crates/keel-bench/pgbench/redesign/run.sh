#!/bin/bash
# Redesign prototypes of issue #19 (docs/benchmarks.md, "Second pass"): one burn-down of 49,920
# jobs by 2 pgbench clients in a database `proto`, printing jobs/s, WAL bytes per job, jobs
# completed and HOT/all updates of keel_jobs.
# usage: run.sh current | combined | ready-batch [fillfactor] | ready-hot [fillfactor] | hot-finish [fillfactor]
# `combined` (session 13): today's shape, each client finishing its previous batch inside its
# next claim; one transaction more per client finishes the last batch.
cd "$(dirname "$0")"
T=195
case $1 in current) RUN=current_run.sql ;; combined) RUN=combined_run.sql; T=196 ;; hot-claim) RUN=hot_claim_run.sql ;; ready-batch) RUN=ready_batch_run.sql ;; ready-hot) RUN=ready_hot_run.sql ;; hot-finish) RUN=hot_finish_run.sql ;; *) echo "usage: $0 current|combined|ready-batch|ready-hot|hot-finish [fillfactor]"; exit 2 ;; esac
psql -U postgres -h 127.0.0.1 -qc "CREATE DATABASE proto" 2>/dev/null
P="psql -U postgres -h 127.0.0.1 -q -d proto"
if [ $1 = current ] || [ $1 = combined ]; then $P -f current_schema.sql; elif [ $1 = hot-finish ]; then $P -v ff=${2:-100} -f hot_finish_schema.sql; elif [ $1 = hot-claim ]; then $P -v ff=${2:-100} -f hot_claim_schema.sql; else $P -v ff=${2:-100} -f ready_schema.sql; fi
$P -c "VACUUM ANALYZE" -c "CHECKPOINT"
W0=$($P -Atc "select pg_current_wal_lsn()")
S=$(date +%s.%N)
pgbench -n -c 2 -j 2 -t $T -f $RUN -U postgres -h 127.0.0.1 proto 2>&1 | grep -E "tps|failed|error" | head -3
E=$(date +%s.%N)
W1=$($P -Atc "select pg_current_wal_lsn()")
$P -Atc "select '$1 jobs/s', round(49920/($E-$S)), 'wal/job', pg_wal_lsn_diff('$W1','$W0')/49920, (select count(*) from keel_jobs where state='completed') done, (select n_tup_hot_upd||'/'||n_tup_upd from pg_stat_user_tables where relname='keel_jobs')"
