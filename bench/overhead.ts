/**
 * The runner's overhead: wall time of the same quick_test run of the tiny model on the CPU, through the queue and
 * the runner (from Queue.add to the job's completion) against train.py run directly, alternating, in one run.
 *
 *   node --import tsx bench/overhead.ts [runs-each=3]
 */
import { execa } from 'execa';
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRunner, TRAINER_SCRIPT } from '../gpu-runner/runner.ts';
import { loadConfig, REPO_ROOT } from '../src/config.ts';
import { TrainQueue } from '../src/queue.ts';
import { connectRedis, startEmbeddedRedis } from '../src/redis.ts';

const RUNS = Number(process.argv[2] ?? 3);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const redis = await startEmbeddedRedis();
const modelsDir = await mkdtemp(join(tmpdir(), 'bench-overhead-'));
const config = loadConfig({ REDIS_URL: redis.url, QUEUE_PREFIX: 'benchoverhead', MODELS_DIR: modelsDir, PYTHON: join(REPO_ROOT, '.venv/bin/python') });
const runnerConn = connectRedis(redis.url);
const botConn = connectRedis(redis.url);
const runner = await startRunner({ config, connection: runnerConn });
const queue = new TrainQueue(botConn, config.queuePrefix);

async function direct(): Promise<number> {
  const t0 = performance.now();
  const r = await execa(config.python, ['-u', TRAINER_SCRIPT, '--profile', 'quick_test', '--models-dir', modelsDir, '--dataset', config.dataset], { cwd: REPO_ROOT, reject: false });
  if (r.exitCode !== 0) throw new Error(`train.py failed: ${r.stderr.slice(-500)}`);
  return (performance.now() - t0) / 1000;
}

async function throughRunner(): Promise<number> {
  const t0 = performance.now();
  const finished = new Promise<void>((resolve, reject) => {
    runner.worker.once('completed', () => resolve());
    runner.worker.once('failed', (_job, e) => reject(e));
  });
  await queue.add({ profile: 'quick_test', requestedBy: { id: 'bench', name: 'bench', platform: 'console' }, origin: { platform: 'console', channelId: 'bench' } });
  await finished;
  return (performance.now() - t0) / 1000;
}

try {
  await direct(); // builds the tiny model and warms the file cache; not counted
  const d: number[] = [];
  const q: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    d.push(await direct());
    q.push(await throughRunner());
  }
  console.log(`quick_test of the tiny gpt-oss on the CPU, ${RUNS} runs each, alternating (${cpus().length} × ${cpus()[0]?.model})`);
  console.log(`train.py directly     median ${median(d).toFixed(2)} s   runs ${d.map((x) => x.toFixed(2)).join(', ')}`);
  console.log(`through the runner    median ${median(q).toFixed(2)} s   runs ${q.map((x) => x.toFixed(2)).join(', ')}`);
  console.log(`ratio (runner / direct) ${(median(q) / median(d)).toFixed(3)}`);
} finally {
  await runner.close();
  await queue.close();
  await runnerConn.quit();
  await botConn.quit();
  await redis.stop();
  await rm(modelsDir, { recursive: true, force: true });
}
process.exit(0);
