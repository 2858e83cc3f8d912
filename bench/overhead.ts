/**
 * The runner's overhead: the same quick_test run through the queue and the runner (from Queue.add) against train.py
 * run directly with the same arguments, alternating, in one run. Two figures each: the time to the first training
 * step and the wall time to the end.
 *
 *   node --import tsx bench/overhead.ts [runs-each=3]
 *
 * CPU by default (the tiny gpt-oss). The environment chooses as the runner's own config does: on a GPU host,
 * `TRAINER_BACKEND=cuda BASE_MODEL=/path/to/model PYTHON=python3` (bench/gpu/run_runner.sh does this).
 * BENCH_WARMUP=0 skips the uncounted first direct run; BENCH_OUT=file.jsonl appends one line per run as it ends.
 */
import { execa } from 'execa';
import { appendFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRunner, TRAINER_SCRIPT, trainerArgs } from '../gpu-runner/runner.ts';
import { loadConfig, REPO_ROOT } from '../src/shared/config.ts';
import type { TrainJobData, TrainProgress } from '../src/shared/jobs.ts';
import { TrainQueue } from '../src/bot/queue.ts';
import { connectRedis, startEmbeddedRedis } from '../src/shared/redis.ts';

const RUNS = Number(process.argv[2] ?? 3);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const sec = (t0: number) => (performance.now() - t0) / 1000;

const redis = await startEmbeddedRedis();
const modelsDir = await mkdtemp(join(tmpdir(), 'bench-overhead-'));
const config = loadConfig({
  PYTHON: join(REPO_ROOT, '.venv/bin/python'),
  ...process.env,
  REDIS_URL: redis.url,
  QUEUE_PREFIX: 'benchoverhead',
  MODELS_DIR: modelsDir,
});
const runnerConn = connectRedis(redis.url);
const botConn = connectRedis(redis.url);
const runner = await startRunner({ config, connection: runnerConn });
const queue = new TrainQueue(botConn, config.queuePrefix);
const request: TrainJobData = {
  profile: 'quick_test',
  requestedBy: { id: 'bench', name: 'bench', platform: 'console' },
  origin: { platform: 'console', channelId: 'bench' },
};

interface Run {
  arm: 'direct' | 'runner';
  firstStepS: number;
  totalS: number;
}
const record = (r: Run) => {
  if (process.env.BENCH_OUT) appendFileSync(process.env.BENCH_OUT, `${JSON.stringify(r)}\n`);
  console.log(`${r.arm.padEnd(6)} first step ${r.firstStepS.toFixed(2)} s, done ${r.totalS.toFixed(2)} s`);
  return r;
};

/** train.py with the arguments and environment the runner would give it, timed from the spawn. */
async function direct(): Promise<Run> {
  const t0 = performance.now();
  let firstStepS = NaN;
  const child = execa(config.python, ['-u', TRAINER_SCRIPT, ...trainerArgs(config, request, 'direct')], {
    cwd: REPO_ROOT,
    reject: false,
    env: {
      PYTHONUNBUFFERED: '1',
      TOKENIZERS_PARALLELISM: 'false',
      TRAINER_LOAD_IN_4BIT: config.trainerLoadIn4bit ? '1' : '0',
    },
  });
  for await (const line of child) {
    if (Number.isNaN(firstStepS) && line.includes('"type": "step"')) firstStepS = sec(t0);
  }
  const r = await child;
  if (r.exitCode !== 0) throw new Error(`train.py failed: ${String(r.stderr).slice(-500)}`);
  return record({ arm: 'direct', firstStepS, totalS: sec(t0) });
}

/** The same through the queue: Queue.add to the first step's progress event, and to the job's completion. */
async function throughRunner(): Promise<Run> {
  const t0 = performance.now();
  let firstStepS = NaN;
  const onProgress = (_job: unknown, p: unknown) => {
    if (Number.isNaN(firstStepS) && (p as TrainProgress).phase === 'training') firstStepS = sec(t0);
  };
  runner.worker.on('progress', onProgress);
  const finished = new Promise<void>((resolve, reject) => {
    runner.worker.once('completed', () => resolve());
    runner.worker.once('failed', (_job, e) => reject(e));
  });
  await queue.add(request);
  await finished.finally(() => runner.worker.off('progress', onProgress));
  return record({ arm: 'runner', firstStepS, totalS: sec(t0) });
}

try {
  if (process.env.BENCH_WARMUP !== '0') await direct(); // builds the tiny model and warms caches; not counted
  const d: Run[] = [];
  const q: Run[] = [];
  for (let i = 0; i < RUNS; i++) {
    d.push(await direct());
    q.push(await throughRunner());
  }
  const m = (rs: Run[], k: 'firstStepS' | 'totalS') => median(rs.map((r) => r[k]));
  console.log(
    `quick_test, backend ${config.trainerBackend}, base ${config.baseModel}, ${RUNS} runs each, alternating (${cpus().length} × ${cpus()[0]?.model})`,
  );
  console.log(
    `train.py directly     first step median ${m(d, 'firstStepS').toFixed(2)} s   done median ${m(d, 'totalS').toFixed(2)} s   runs ${d.map((x) => x.totalS.toFixed(2)).join(', ')}`,
  );
  console.log(
    `through the runner    first step median ${m(q, 'firstStepS').toFixed(2)} s   done median ${m(q, 'totalS').toFixed(2)} s   runs ${q.map((x) => x.totalS.toFixed(2)).join(', ')}`,
  );
  console.log(
    `ratio (runner / direct): first step ${(m(q, 'firstStepS') / m(d, 'firstStepS')).toFixed(3)}, done ${(m(q, 'totalS') / m(d, 'totalS')).toFixed(3)}`,
  );
} finally {
  await runner.close();
  await queue.close();
  await runnerConn.quit();
  await botConn.quit();
  await redis.stop();
  await rm(modelsDir, { recursive: true, force: true });
}
process.exit(0);
