#!/bin/bash
# Redesign prototypes of issue #19 (docs/queue-throughput-history.md, "Second pass"): one burn-down of 49,920
# jobs by 2 pgbench clients in a database `proto`, printing jobs/s, WAL bytes per job, jobs
# completed and HOT/all updates of keel_jobs.
# usage: [IDS=random] run.sh current | nolock | moved | moved-pk | delete | combined | ready-batch [fillfactor] | ready-hot [fillfactor] | hot-finish [fillfactor]
# `combined` (session 13): today's shape, each client finishing its previous batch inside its
# next claim; one transaction more per client finishes the last batch.
cd "$(dirname "$0")"
T=195
# Session 14's shapes are today's script with one part changed, written out here since pgbench
# has no include: `moved` and `delete` swap the finish for *_finish.sql; `nolock` drops the
# claim's row locks, takes turns under an advisory lock instead and re-checks the state.
FINISH="^UPDATE keel_jobs SET state = 'completed'"
SCRIPT=$(mktemp --suffix=.sql); trap 'rm -f $SCRIPT' EXIT
case $1 in moved|moved-pk) { sed "/$FINISH/,\$d" current_run.sql; cat moved_finish.sql; } > $SCRIPT ;;
  delete) { sed "/$FINISH/,\$d" current_run.sql; cat delete_finish.sql; } > $SCRIPT ;;
  nolock) sed -e 's/^  FOR UPDATE SKIP LOCKED)$/  )/' -e '/^SET LOCAL synchronous_commit/a SELECT pg_advisory_xact_lock(4242);' \
    -e "s/^WHERE j.id = ANY(ARRAY(SELECT id FROM next));$/WHERE j.id = ANY(ARRAY(SELECT id FROM next)) AND j.state IN ('pending', 'retrying');/" current_run.sql > $SCRIPT ;;
esac
case $1 in current) RUN=current_run.sql ;; nolock|moved|moved-pk|delete) RUN=$SCRIPT ;; combined) RUN=combined_run.sql; T=196 ;; hot-claim) RUN=hot_claim_run.sql ;; ready-batch) RUN=ready_batch_run.sql ;; ready-hot) RUN=ready_hot_run.sql ;; hot-finish) RUN=hot_finish_run.sql ;; *) echo "usage: [IDS=random] $0 current|nolock|moved|moved-pk|delete|combined|ready-batch|ready-hot|hot-finish [fillfactor]"; exit 2 ;; esac
psql -U postgres -h 127.0.0.1 -qc "CREATE DATABASE proto" 2>/dev/null
P="psql -U postgres -h 127.0.0.1 -q -d proto"
if [ $1 = current ] || [ $1 = combined ] || [ $1 = nolock ] || [ $1 = delete ]; then SCHEMA=current_schema.sql; elif [ $1 = moved ] || [ $1 = moved-pk ]; then SCHEMA="current_schema.sql moved_schema.sql"; [ $1 = moved-pk ] && PK="-v pk=1"; elif [ $1 = hot-finish ]; then SCHEMA=hot_finish_schema.sql; elif [ $1 = hot-claim ]; then SCHEMA=hot_claim_schema.sql; else SCHEMA=ready_schema.sql; fi
# Keel's job ids are UUIDv7, in creation order, and the prefill enqueues in that order; the
# schemas' gen_random_uuid() scatters every non-HOT update's primary-key entry instead
# (session 14: that alone cost today's shape 25-40% here). IDS=random keeps the old prefill.
$P -c "DROP TABLE IF EXISTS keel_jobs_done"
if [ "${IDS:-ordered}" = random ]; then cat $SCHEMA | $P $PK -v ff=${2:-100} -f -
else cat $SCHEMA | sed 's/SELECT gen_random_uuid(),/SELECT lpad(to_hex(g), 32, $$0$$)::uuid,/' | $P $PK -v ff=${2:-100} -f -; fi
$P -c "VACUUM ANALYZE" -c "CHECKPOINT"
W0=$($P -Atc "select pg_current_wal_lsn()")
S=$(date +%s.%N)
pgbench -n -c 2 -j 2 -t $T -f $RUN -U postgres -h 127.0.0.1 proto 2>&1 | grep -E "tps|failed|error" | head -3
E=$(date +%s.%N)
W1=$($P -Atc "select pg_current_wal_lsn()")
$P -Atc "select '$1 jobs/s', round(49920/($E-$S)), 'wal/job', round(pg_wal_lsn_diff('$W1','$W0')/49920), (select count(*) from keel_jobs where state='completed') + coalesce((select n_tup_ins from pg_stat_user_tables where relname='keel_jobs_done'), 0) done, (select n_tup_hot_upd||'/'||n_tup_upd from pg_stat_user_tables where relname='keel_jobs')"
