/**
 * /ask throughput through the queue, the runner and the resident inference worker (tiny model on the CPU, the base
 * model so no training is needed): 16 asks sent 1, 4 and 16 at a time; asks per second and the latency from add
 * to answer. One runner answers one ask at a time, so more at once shows queueing, not more throughput.
 *
 *   node --import tsx bench/asks.ts [asks=16]
 */
import { Queue, QueueEvents } from 'bullmq';
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRunner } from '../gpu-runner/runner.ts';
import { loadConfig, REPO_ROOT } from '../src/shared/config.ts';
import { ASK_QUEUE, type AskJobData } from '../src/shared/jobs.ts';
import { closeRedis, connectRedis, startEmbeddedRedis } from '../src/shared/redis.ts';

const ASKS = Number(process.argv[2] ?? 16);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const redis = await startEmbeddedRedis();
const modelsDir = await mkdtemp(join(tmpdir(), 'bench-asks-'));
const config = loadConfig({
  REDIS_URL: redis.url,
  QUEUE_PREFIX: 'benchasks',
  MODELS_DIR: modelsDir,
  PYTHON: join(REPO_ROOT, '.venv/bin/python'),
});
const runnerConn = connectRedis(redis.url);
const botConn = connectRedis(redis.url);
const runner = await startRunner({ config, connection: runnerConn });
const queue = new Queue(ASK_QUEUE, { connection: botConn, prefix: config.queuePrefix });
const events = new QueueEvents(ASK_QUEUE, { connection: botConn, prefix: config.queuePrefix });
events.setMaxListeners(64); // one waitUntilFinished listener per ask in flight (on both)
queue.setMaxListeners(64);
await events.waitUntilReady();

const ask = (n: number): AskJobData => ({
  model: 'base',
  messages: [{ role: 'user', content: `What is ${n} plus ${n}?` }],
  reasoningEffort: 'low',
  requestedBy: { id: 'bench', name: 'bench', platform: 'console' },
  origin: { platform: 'console', channelId: 'bench' },
});

async function round(concurrency: number) {
  const latencies: number[] = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < ASKS) {
        const n = next++;
        const started = performance.now();
        const job = await queue.add('ask', ask(n));
        await job.waitUntilFinished(events, 120_000);
        latencies.push(performance.now() - started);
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  return { concurrency, perSecond: ASKS / seconds, median: median(latencies), max: Math.max(...latencies) };
}

try {
  await queue.add('ask', ask(0)).then((j) => j.waitUntilFinished(events, 120_000)); // starts the worker, loads the model
  console.log(
    `/ask through the queue to one runner's resident worker, ${ASKS} asks per row, tiny gpt-oss on the CPU (${cpus().length} × ${cpus()[0]?.model}); max_new_tokens 256`,
  );
  console.log('at once   asks/s   median latency   max latency');
  for (const c of [1, 4, 16]) {
    const r = await round(c);
    console.log(
      `${String(c).padStart(7)} ${r.perSecond.toFixed(2).padStart(8)} ${(r.median / 1000).toFixed(2).padStart(14)} s ${(r.max / 1000).toFixed(2).padStart(11)} s`,
    );
  }
  console.log(`inference worker started ${runner.inference.starts} time(s)`);
} finally {
  await events.close();
  await queue.close();
  await runner.close();
  await closeRedis(runnerConn);
  await closeRedis(botConn);
  await redis.stop();
  await rm(modelsDir, { recursive: true, force: true });
}
process.exit(0);
