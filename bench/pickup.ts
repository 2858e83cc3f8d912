/**
 * Enqueue-to-pickup latency: the time from Queue.add to the moment a worker holds the job, over many jobs, for a bare
 * BullMQ worker and for our runner (up to the point where it starts the trainer), side by side in one run against
 * one real redis-server. The trainer is bench/fake-trainer.sh, so training time is not in the figures.
 *
 *   node --import tsx bench/pickup.ts [jobs=1000]
 */
import { Queue, Worker } from 'bullmq';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { startRunner } from '../gpu-runner/runner.ts';
import { loadConfig, REPO_ROOT } from '../src/shared/config.ts';
import { TRAIN_QUEUE, type TrainJobData } from '../src/shared/jobs.ts';
import { TrainQueue } from '../src/bot/queue.ts';
import { connectRedis, startEmbeddedRedis } from '../src/shared/redis.ts';

const JOBS = Number(process.argv[2] ?? 1000);
const WARMUP = 20;

const data: TrainJobData = {
  profile: 'quick_test',
  requestedBy: { id: 'bench', name: 'bench', platform: 'console' },
  origin: { platform: 'console', channelId: 'bench' },
};

function stats(ms: number[]) {
  const s = [...ms].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
  return { median: at(0.5), p99: at(0.99), max: s.at(-1)! };
}

/**
 * Adds jobs one at a time; each waits for the previous to be picked up and finished. The pickup time is read inside
 * the worker (the moment it holds the job), not when this loop wakes up: in one process the runner's synchronous
 * spawn of the trainer would otherwise be counted as queue latency.
 */
async function measure(
  add: () => Promise<void>,
  picked: () => Promise<number>,
  finished: () => Promise<void>,
): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < JOBS + WARMUP; i++) {
    const pick = picked();
    const done = finished();
    const t0 = performance.now();
    await add();
    const at = await pick;
    if (i >= WARMUP) out.push(at - t0);
    await done;
  }
  return out;
}

function signal() {
  let fire!: (at: number) => void;
  let p = new Promise<number>((r) => (fire = r));
  return {
    next: () => p,
    fire: () => {
      fire(performance.now());
      p = new Promise<number>((r) => (fire = r));
    },
  };
}

const redis = await startEmbeddedRedis();
const fmt = (x: number) => x.toFixed(2).padStart(7);
try {
  // 1. a bare BullMQ worker
  const bareConn = connectRedis(redis.url);
  const bareQueueConn = connectRedis(redis.url);
  const bareQueue = new Queue('bare', { connection: bareQueueConn, prefix: 'bench' });
  const barePicked = signal();
  const bareDone = signal();
  const bare = new Worker('bare', async () => barePicked.fire(), {
    connection: bareConn,
    prefix: 'bench',
    concurrency: 1,
  });
  bare.on('completed', () => bareDone.fire());
  await bare.waitUntilReady();
  const bareMs = await measure(
    async () => void (await bareQueue.add('j', data, { removeOnComplete: true })),
    barePicked.next,
    async () => void (await bareDone.next()),
  );
  await bare.close();
  await bareQueue.close();

  // 2. our queue and runner
  const conn = connectRedis(redis.url);
  const config = loadConfig({
    REDIS_URL: redis.url,
    QUEUE_PREFIX: 'benchrun',
    PYTHON: join(REPO_ROOT, 'bench/fake-trainer.sh'),
    MODELS_DIR: '/tmp',
  });
  const ourPicked = signal();
  const ourDone = signal();
  const runner = await startRunner({ config, connection: conn, onJobStart: () => ourPicked.fire() });
  runner.worker.on('completed', () => ourDone.fire());
  runner.worker.on('failed', (_j, e) => {
    throw e;
  });
  // the bot's queue on a connection of its own, as in production, where the bot and the runner are two processes
  const botConn = connectRedis(redis.url);
  const queue = new TrainQueue(botConn, 'benchrun');
  const ourMs = await measure(
    async () => void (await queue.queue.add(TRAIN_QUEUE, data, { removeOnComplete: true })),
    ourPicked.next,
    async () => void (await ourDone.next()),
  );
  await runner.close();
  await queue.close();
  await conn.quit();
  await botConn.quit();
  await bareConn.quit();
  await bareQueueConn.quit();

  const b = stats(bareMs);
  const o = stats(ourMs);
  console.log(`enqueue-to-pickup latency, ${JOBS} jobs each, one at a time (${cpus().length} × ${cpus()[0]?.model})`);
  console.log('                      median     p99     max  (ms)');
  console.log(`bare BullMQ worker   ${fmt(b.median)} ${fmt(b.p99)} ${fmt(b.max)}`);
  console.log(`our runner           ${fmt(o.median)} ${fmt(o.p99)} ${fmt(o.max)}`);
  console.log(`ratio (ours / bare)  ${fmt(o.median / b.median)} ${fmt(o.p99 / b.p99)}`);
} finally {
  await redis.stop();
}
process.exit(0);
