// keel-bench peer: pg-boss 12 in the bench's scratch database.
// Usage: node pgboss.mjs URL setup | fill N | run CONCURRENCY N
// `fill` prints "filled_ms T": the time its enqueue loop took (Node's start left out).
// `run` prints "starting" just before the worker starts (the bench's clock starts there),
// "ran" once its handler has run N times, and keeps working until stdin closes.
// Tuned as pg-boss documents for throughput: batched fetches
// (`batchSize`), continuous fetching while batches come back full (`burstWhenBatchFull`), and
// `localConcurrency` workers.
import { PgBoss } from "pg-boss";
import { createInterface } from "node:readline";

const [url, mode, arg] = process.argv.slice(2);
const QUEUE = "bench";
// Prints "ran" once the handler has seen `target` jobs (the bench then polls the database).
let ran = 0;
let target = Infinity;
let said = false;
const BATCH = 100;
const boss = (max) => new PgBoss({ connectionString: url, max, supervise: false, schedule: false });

if (mode === "setup") {
  const b = boss(2);
  await b.start();
  await b.createQueue(QUEUE);
  await b.stop({ graceful: false });
} else if (mode === "fill") {
  const b = boss(2);
  await b.start();
  const n = Number(arg);
  const t0 = performance.now();
  for (let i = 0; i < n; i += 1000) {
    const jobs = [];
    for (let j = i; j < Math.min(n, i + 1000); j++) jobs.push({ data: { i: j } });
    await b.insert(QUEUE, jobs);
  }
  process.stdout.write(`filled_ms ${performance.now() - t0}\n`);
  await b.stop({ graceful: false });
} else if (mode === "run") {
  const concurrency = Number(arg);
  target = Number(process.argv[5]);
  const b = boss(concurrency + 2);
  process.stdout.write("starting\n");
  await b.start();
  await b.work(
    QUEUE,
    { batchSize: BATCH, localConcurrency: concurrency, burstWhenBatchFull: true, pollingIntervalSeconds: 0.5 },
    async (jobs) => {
      ran += jobs.length;
      if (ran >= target && !said) {
        said = true;
        process.stdout.write("ran\n");
      }
    },
  );
  createInterface({ input: process.stdin }).on("close", async () => {
    await b.stop({ graceful: true, timeout: 5000 });
    process.exit(0);
  });
} else {
  console.error("usage: pgboss.mjs URL setup|fill N|run CONCURRENCY N");
  process.exit(2);
}
