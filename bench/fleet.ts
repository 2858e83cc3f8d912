/**
 * Jobs per hour that N runner workers take from one queue, against one: the same batch of quick_test jobs queued at
 * once, each arm with a fresh queue, arms alternating, in one run. Two kinds of arm:
 *
 *   - training: the real trainer (the tiny gpt-oss on the CPU), one core per trainer (OMP_NUM_THREADS=1), as each
 *     worker of a GPU host has its own GPU. N is at most the number of cores.
 *   - queue only: a stand-in trainer that ends at once (bench/fake-trainer.sh), so the figure is what the
 *     queue and the runners alone can dispatch: the ceiling the queue puts on a fleet.
 *
 * Beside each: the gap a runner leaves between finishing one job and taking the next (BullMQ's timestamps).
 *
 *   node --import tsx bench/fleet.ts [training-jobs=8] [runner-counts=1,2] [rounds=2] [queue-only-jobs=200] [queue-only-runner-counts=1,2,4]
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRunner, type Runner } from '../gpu-runner/runner.ts';
import { loadConfig, REPO_ROOT } from '../src/shared/config.ts';
import { TrainProgress, type TrainJobData } from '../src/shared/jobs.ts';
import { TrainQueue } from '../src/bot/queue.ts';
import { closeRedis, connectRedis, startEmbeddedRedis } from '../src/shared/redis.ts';

const JOBS = Number(process.argv[2] ?? 8);
const COUNTS = (process.argv[3] ?? '1,2').split(',').map(Number);
const ROUNDS = Number(process.argv[4] ?? 2);
const QUEUE_ONLY_JOBS = Number(process.argv[5] ?? 200);
const QUEUE_ONLY_COUNTS = (process.argv[6] ?? '1,2,4').split(',').map(Number);
const CORES = cpus().length;
const gapText = (gaps: number[]) =>
  gaps.length ? `median ${median(gaps)} ms, max ${Math.max(...gaps)} ms` : '— (one job per runner)';
function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

const redis = await startEmbeddedRedis();
const request: TrainJobData = {
  profile: 'quick_test',
  requestedBy: { id: 'bench', name: 'bench', platform: 'console' },
  origin: { platform: 'console', channelId: 'bench' },
};
let arms = 0;

interface Arm {
  kind: 'training' | 'queue only';
  runners: number;
  jobs: number;
  wallS: number;
  jobsPerHour: number;
  gapsMs: number[];
}

async function arm(kind: Arm['kind'], n: number, jobs: number): Promise<Arm> {
  const prefix = `benchfleet${++arms}`;
  const modelsDir = await mkdtemp(join(tmpdir(), 'bench-fleet-'));
  const python = kind === 'training' ? join(REPO_ROOT, '.venv/bin/python') : join(REPO_ROOT, 'bench/fake-trainer.sh');
  // one core per trainer, as one GPU per worker (inherited through the runner)
  process.env.OMP_NUM_THREADS = '1';
  const runners: Runner[] = [];
  const conns = [];
  for (let i = 0; i < n; i++) {
    const conn = connectRedis(redis.url);
    conns.push(conn);
    const config = loadConfig({
      REDIS_URL: redis.url,
      QUEUE_PREFIX: prefix,
      MODELS_DIR: modelsDir,
      PYTHON: python,
      TRAINER_BACKEND: 'cpu',
      GPU_ID: String(i),
      RUNNER_HOST: 'bench',
      LOG_LEVEL: 'warn',
    });
    runners.push(await startRunner({ config, connection: conn }));
  }
  const botConn = connectRedis(redis.url);
  await botConn.ping(); // connected before the first add (the queue answers 'unavailable' while it connects)
  const queue = new TrainQueue(botConn, prefix);
  const t0 = Date.now();
  for (let i = 0; i < jobs; i++) await queue.add(request);
  for (;;) {
    const c = await queue.queue.getJobCounts('completed', 'failed');
    if (c.failed)
      throw new Error(
        `${c.failed} job(s) failed in the ${kind} arm: ${(await queue.queue.getJobs(['failed']))[0]?.failedReason}`,
      );
    if (c.completed === jobs) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  const done = await queue.queue.getJobs(['completed']);
  const wallS = (Math.max(...done.map((j) => j.finishedOn!)) - t0) / 1000;
  // per runner, in order: the time from one job's end to the next one's start
  const byRunner = new Map<string, { start: number; end: number }[]>();
  for (const j of done) {
    const p = TrainProgress.safeParse(j.progress);
    const who = p.success ? (p.data.runner ?? '?') : '?';
    byRunner.set(who, [...(byRunner.get(who) ?? []), { start: j.processedOn!, end: j.finishedOn! }]);
  }
  const gapsMs = [...byRunner.values()].flatMap((js) =>
    js
      .sort((a, b) => a.start - b.start)
      .slice(1)
      .map((j, i) => j.start - js[i]!.end),
  );
  for (const r of runners) await r.close();
  await queue.close();
  for (const c of [...conns, botConn]) await closeRedis(c);
  await rm(modelsDir, { recursive: true, force: true });
  const result = { kind, runners: n, jobs, wallS, jobsPerHour: (jobs / wallS) * 3600, gapsMs };
  console.log(
    `${kind.padEnd(10)} ${n} runner(s): ${jobs} jobs in ${wallS.toFixed(1)} s = ${Math.round(result.jobsPerHour)} jobs/h; gap between jobs ${gapText(gapsMs)}; jobs per runner ${[...byRunner.values()].map((js) => js.length).join('/')}`,
  );
  return result;
}

try {
  const results: Arm[] = [];
  await arm('training', 1, 1); // warm-up: builds the tiny model, fills the OS caches; not counted
  for (let round = 0; round < ROUNDS; round++) for (const n of COUNTS) results.push(await arm('training', n, JOBS));
  for (const n of QUEUE_ONLY_COUNTS) results.push(await arm('queue only', n, QUEUE_ONLY_JOBS));
  console.log(
    `\n${CORES} × ${cpus()[0]?.model.trim()}; training arms alternate, ${ROUNDS} rounds of ${JOBS} quick_test jobs`,
  );
  console.log('| arm | runners | jobs/hour (median of rounds) | vs 1 runner | gap between jobs on one runner |');
  console.log('| --- | --- | --- | --- | --- |');
  for (const kind of ['training', 'queue only'] as const) {
    const one = median(results.filter((r) => r.kind === kind && r.runners === 1).map((r) => r.jobsPerHour));
    for (const n of kind === 'training' ? COUNTS : QUEUE_ONLY_COUNTS) {
      const rs = results.filter((r) => r.kind === kind && r.runners === n);
      const jph = median(rs.map((r) => r.jobsPerHour));
      const gaps = rs.flatMap((r) => r.gapsMs);
      console.log(
        `| ${kind} | ${n} | ${Math.round(jph)} (${rs.map((r) => Math.round(r.jobsPerHour)).join(', ')}) | ${(jph / one).toFixed(2)}× | ${gapText(gaps)} |`,
      );
    }
  }
} finally {
  await redis.stop();
}
process.exit(0);
