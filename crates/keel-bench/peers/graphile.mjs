// keel-bench peer: graphile-worker 0.18 in the bench's scratch database.
// Usage: node graphile.mjs URL setup | fill N | run CONCURRENCY N | latency CONCURRENCY N [LATER]
// `fill` prints "filled_ms T": the time its enqueue loop took (Node's start left out).
// `latency` runs an idle worker and, N times, 5 ms apart, adds one job through a separate
// pool (so the wakeup travels by LISTEN/NOTIFY, as from another process) and times it until
// the handler starts; it prints "samples" and the N times in ms as JSON, then
// "calls" and the addJob calls' own times. With LATER, that many jobs of the same task and
// priority are first scheduled for tomorrow (1,000 per addJobs call) and `VACUUM ANALYZE` run,
// before the worker starts.
// `run` prints "starting" just before the worker starts (the bench's clock starts there),
// "ran" once its handler has run N times, and keeps working until stdin closes.
// Tuned as graphile-worker's performance docs advise:
// a local queue (jobs fetched and locked in batches) and batched completions.
import { Logger, run, runMigrations, makeWorkerUtils } from "graphile-worker";
import { createInterface } from "node:readline";

const [url, mode, arg] = process.argv.slice(2);
// Silent, as Keel's worker is in the bench (graphile logs a line per job by default).
const logger = new Logger(() => () => {});
const preset = (concurrency) => ({
  worker: {
    connectionString: url,
    concurrentJobs: concurrency,
    maxPoolSize: concurrency + 2,
    localQueue: { size: 500 },
    completeJobBatchDelay: 0,
    failJobBatchDelay: 0,
    pollInterval: 1000,
    logger,
  },
});
// Prints "ran" once the handler has run `target` times (the bench then polls the database).
let ran = 0;
let target = Infinity;
const taskList = {
  noop: async () => {
    if (++ran === target) process.stdout.write("ran\n");
  },
};

if (mode === "setup") {
  await runMigrations({ preset: preset(1) });
} else if (mode === "fill") {
  const utils = await makeWorkerUtils({ connectionString: url, logger });
  const n = Number(arg);
  const t0 = performance.now();
  for (let i = 0; i < n; i += 1000) {
    const specs = [];
    for (let j = i; j < Math.min(n, i + 1000); j++) specs.push({ identifier: "noop", payload: { i: j } });
    await utils.addJobs(specs);
  }
  process.stdout.write(`filled_ms ${performance.now() - t0}\n`);
  await utils.release();
} else if (mode === "run") {
  const concurrency = Number(arg);
  target = Number(process.argv[5]);
  process.stdout.write("starting\n");
  const runner = await run({ preset: preset(concurrency), taskList, noHandleSignals: true });
  createInterface({ input: process.stdin }).on("close", async () => {
    await runner.stop();
    process.exit(0);
  });
} else if (mode === "latency") {
  const concurrency = Number(arg);
  const n = Number(process.argv[5]);
  let started = null;
  const latencyTasks = {
    lat: async () => {
      const s = started;
      started = null;
      if (s) s(performance.now());
    },
  };
  const later = Number(process.argv[6] ?? 0);
  const utils = await makeWorkerUtils({ connectionString: url, logger });
  const tomorrow = Date.now() + 86_400_000;
  for (let i = 0; i < later; i += 1000) {
    const specs = [];
    for (let j = i; j < Math.min(later, i + 1000); j++) {
      specs.push({ identifier: "lat", payload: {}, runAt: new Date(tomorrow + j) });
    }
    await utils.addJobs(specs);
  }
  if (later > 0) await utils.withPgClient((c) => c.query("VACUUM ANALYZE"));
  const runner = await run({ preset: preset(concurrency), taskList: latencyTasks, noHandleSignals: true });
  const one = async () => {
    const handled = new Promise((resolve) => (started = resolve));
    const t0 = performance.now();
    await utils.addJob("lat", {});
    const call = performance.now() - t0;
    return [(await handled) - t0, call];
  };
  await one(); // warm-up: the worker's first fetch and LISTEN
  const samples = [];
  const calls = [];
  for (let i = 0; i < n; i++) {
    await new Promise((r) => setTimeout(r, 5));
    const [lat, call] = await one();
    samples.push(lat);
    calls.push(call);
  }
  process.stdout.write(`samples ${JSON.stringify(samples)}\ncalls ${JSON.stringify(calls)}\n`);
  await utils.release();
  await runner.stop();
  process.exit(0);
} else {
  console.error("usage: graphile.mjs URL setup|fill N|run CONCURRENCY N|latency CONCURRENCY N [LATER]");
  process.exit(2);
}
