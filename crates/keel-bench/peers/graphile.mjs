// keel-bench peer: graphile-worker 0.18 in the bench's scratch database.
// Usage: node graphile.mjs URL setup | fill N | run CONCURRENCY N
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
  for (let i = 0; i < n; i += 1000) {
    const specs = [];
    for (let j = i; j < Math.min(n, i + 1000); j++) specs.push({ identifier: "noop", payload: { i: j } });
    await utils.addJobs(specs);
  }
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
} else {
  console.error("usage: graphile.mjs URL setup|fill N|run CONCURRENCY N");
  process.exit(2);
}
