/**
 * A fleet on one Redis: runner hosts as real processes (`gpu-runner/main.ts`, CPU backend, the real trainer), each a
 * worker pinned to a GPU id, and a bot process (the console) that sees them through their heartbeats. Nothing is
 * replaced but the GPUs: on the CPU backend a "GPU id" names a slot, and the device in /runners is the host's memory.
 * "Hosts" are runner processes on this machine with their own RUNNER_HOST (and, for the copy to shared storage, a
 * models folder of their own).
 */
import { execa } from 'execa';
import { mkdtemp, readdir, readlink, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { RunnerView } from '../../src/shared/runner-registry.ts';
import { runnerEnvFor, runnerProcess, trainerPids, waitUntil } from '../helpers/fault-kit.ts';
import { until } from '../helpers/until.ts';
import { startHarness, type Harness } from '../helpers/harness.ts';

const HEARTBEAT_S = 0.5;

const runnerEnv = (h: Harness, extra: Record<string, string>) =>
  // two trainers at once on this machine's cores: one thread each, or torch's threads fight over them
  runnerEnvFor(h, h.modelsDir, {
    TRAINER_BACKEND: 'cpu',
    RUNNER_HEARTBEAT_S: String(HEARTBEAT_S),
    OMP_NUM_THREADS: '1',
    ...extra,
  });

/** The job ids each runner started, from its log ("job 7: quick_test for ada"). */
const startedBy = (log: string) => [...log.matchAll(/job (\d+): quick_test for ada/g)].map((m) => m[1]!);

/** Waits until `n` jobs typed after console line `from` are done; a timeout prints what the console had by then. */
async function jobsDone(h: Harness, from: number, n: number, timeoutMs: number): Promise<void> {
  const done = () => h.lines.slice(from).filter((l) => /^✅ job \d+ done/.test(l)).length;
  await until(`${n} jobs done`, () => done() === n, timeoutMs).catch((e: Error) => {
    throw new Error(`${e.message}; the console printed:\n${h.lines.join('\n')}`);
  });
}

/** What a test started, stopped after it (runner processes killed before their bot). */
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

/** /runners as the console prints it: the header line and one line per runner. */
async function runnersOutput(h: Harness): Promise<string[]> {
  const from = h.lines.length;
  h.type('/runners');
  // one message, written at once: its lines are all there when its first is
  const head = await h.waitFor(/^Runners: |^No runner/, 10_000, from);
  const rest = h.lines.slice(h.lines.indexOf(head, from) + 1);
  const end = rest.findIndex((l) => !/^(🟢|🔇) /.test(l));
  return [head, ...rest.slice(0, end < 0 ? rest.length : end)];
}

describe('two runner processes, GPU ids 0 and 1, on one queue', () => {
  let h: Harness;
  let gpu0: ReturnType<typeof runnerProcess>;
  let gpu1: ReturnType<typeof runnerProcess>;

  beforeAll(async () => {
    h = await startHarness({ EMBEDDED_RUNNER: 'false', MAX_QUEUED_PER_USER: '10' });
    gpu0 = runnerProcess(runnerEnv(h, { GPU_ID: '0', RUNNER_HOST: 'box-a' }));
    gpu1 = runnerProcess(runnerEnv(h, { GPU_ID: '1', RUNNER_HOST: 'box-a' }));
    await Promise.all([gpu0.ready(), gpu1.ready()]);
  });
  afterAll(async () => {
    for (const r of [gpu0, gpu1]) r?.child.kill('SIGKILL');
    await h?.stop();
  });

  it('/runners shows both with their device and memory, idle', async () => {
    const out = await runnersOutput(h);
    expect(out.join('\n')).toMatch(/^Runners: 2 live$/m);
    for (const name of ['box-a/gpu0', 'box-a/gpu1']) {
      expect(out.find((l) => l.includes(` ${name} `))).toMatch(
        new RegExp(`^🟢 ${name} · CPU backend, \\d+ × .+ · RAM \\d+\\.\\d/\\d+\\.\\d GiB used · idle$`),
      );
    }
  });

  it('share the jobs: each runs once, on one runner, all four finish, and /runners shows a job and its step while it trains', {
    timeout: 240_000,
  }, async () => {
    const seen: RunnerView[] = [];
    let watching = true;
    const watch = (async () => {
      while (watching) {
        seen.push(...(await h.app.bot.runners.list()));
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    const from = h.lines.length;
    for (let i = 0; i < 4; i++) h.type('/train quick_test');
    await jobsDone(h, from, 4, 200_000);
    watching = false;
    await watch;

    const cards = h.lines.slice(from).flatMap((l) => /^🧪 Training job (\d+): quick_test/.exec(l)?.[1] ?? []);
    expect(cards).toHaveLength(4);
    const ran0 = startedBy(gpu0.log());
    const ran1 = startedBy(gpu1.log());
    // every job started exactly once, on exactly one runner, and both runners worked
    expect([...ran0, ...ran1].sort()).toEqual([...cards].sort());
    expect(ran0.length).toBeGreaterThan(0);
    expect(ran1.length).toBeGreaterThan(0);
    expect(h.lines.slice(from).filter((l) => /^❌/.test(l))).toEqual([]);
    // four model folders, latest on one of them
    const folders = (await readdir(h.modelsDir)).filter((n) => n.startsWith('tiny-gpt-oss_quick_test_'));
    expect(folders).toHaveLength(4);
    expect(folders).toContain(await readlink(join(h.modelsDir, 'latest')));
    // the heartbeats carried the job and its step
    const training = seen.filter((r) => r.job && r.job.step > 0);
    expect(training.length).toBeGreaterThan(0);
    for (const r of training) {
      expect(['box-a/gpu0', 'box-a/gpu1']).toContain(r.name);
      expect(cards).toContain(r.job!.id);
      expect(r.job!.maxSteps).toBe(30);
    }
  });

  it('a job that asks for a busy runner waits for it, without spending an attempt or holding up the others; one for a GPU class no runner has is refused', {
    timeout: 120_000,
  }, async () => {
    const asked = h.lines.length;
    h.type('/train quick_test gpu=h100');
    expect(await h.waitFor(/^⚠️/, 10_000, asked)).toBe(
      '⚠️ no runner is of GPU class h100; /runners lists the runners and their classes',
    );
    const from = h.lines.length;
    h.type('/train quick_test host=box-a/gpu1');
    // gpu1 busy with the first: gpu0 takes the second from the queue, hands it back, and runs the third meanwhile
    await h.waitFor(/^⏳ job \d+: starting on box-a\/gpu1…$/, 30_000, from);
    h.type('/train quick_test host=box-a/gpu1');
    h.type('/train quick_test gpu=cpu host=box-a');
    await jobsDone(h, from, 3, 100_000);
    expect(h.lines.slice(from).filter((l) => /^🧪/.test(l))).toEqual([
      expect.stringMatching(/^🧪 Training job \d+: quick_test \(host=box-a\/gpu1\) · /),
      expect.stringMatching(/^🧪 Training job \d+: quick_test \(host=box-a\/gpu1\) · /),
      expect.stringMatching(/^🧪 Training job \d+: quick_test \(host=box-a, gpu=cpu\) · /),
    ]);
    const [first, second, third] = h.lines.slice(from).flatMap((l) => /^🧪 Training job (\d+)/.exec(l)?.[1] ?? []);
    for (const id of [first!, second!]) {
      expect(startedBy(gpu1.log())).toContain(id);
      expect(startedBy(gpu0.log())).not.toContain(id);
    }
    expect(startedBy(gpu0.log())).toContain(third);
    // and the third started while the second still waited for gpu1: it was not held up
    const startedOn = (id: string, gpu: string) =>
      h.lines.findIndex((l, i) => i >= from && l === `⏳ job ${id}: starting on box-a/${gpu}…`);
    expect(startedOn(third!, 'gpu0')).toBeGreaterThan(-1);
    expect(startedOn(third!, 'gpu0')).toBeLessThan(startedOn(second!, 'gpu1'));
    // the second was taken by gpu0 and handed back (more than one start), and it cost no attempt
    const job = (await h.app.bot.queue.queue.getJob(second!))!;
    expect(job.attemptsStarted).toBeGreaterThan(1);
    expect(job.attemptsMade).toBe(1);
  });

  it('a runner killed with -9 goes silent once its heartbeat lapses; one stopped on purpose leaves the list', {
    timeout: 60_000,
  }, async () => {
    gpu1.child.kill('SIGKILL');
    await gpu1.child;
    const killedAt = Date.now();
    await waitUntil(
      async () => (await h.app.bot.runners.list()).some((r) => r.name === 'box-a/gpu1' && !r.live),
      10_000,
      'box-a/gpu1 to go silent',
    );
    // not before its key lapsed: three beats after the last one it sent, which was less than one beat before the kill
    expect(Date.now() - killedAt).toBeGreaterThanOrEqual(2 * HEARTBEAT_S * 1000 - 100);
    const out = await runnersOutput(h);
    expect(out.join('\n')).toMatch(/^Runners: 1 live · 1 silent \(no heartbeat: crashed or cut off\?\)$/m);
    expect(out.find((l) => l.includes(' box-a/gpu1 '))).toMatch(
      /^🔇 box-a\/gpu1 · silent since \d\d:\d\d UTC \(\d+ s ago\)$/,
    );
    expect(out.find((l) => l.includes(' box-a/gpu0 '))).toMatch(/^🟢 box-a\/gpu0 · .* · idle$/);

    gpu0.child.kill('SIGTERM');
    await gpu0.child;
    const after = await runnersOutput(h);
    expect(after.join('\n')).toMatch(/^Runners: 0 live · 1 silent/m);
    expect(after.some((l) => l.includes(' box-a/gpu0 '))).toBe(false);
  });
});

describe('two runner processes pinned to the same GPU', () => {
  /** Samples how many trainers run on `dir` at once until `stop` is called; resolves with the most seen. */
  function sampleTrainers(dir: string): { stop(): Promise<number> } {
    let peak = 0;
    let sampling = true;
    const loop = (async () => {
      while (sampling) {
        peak = Math.max(peak, trainerPids(dir).length);
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    return {
      async stop() {
        sampling = false;
        await loop;
        return peak;
      },
    };
  }

  /** A bot and two runner processes pinned to GPU 0 of one host, started and ready. */
  async function twoOnOneGpu(perGpu: number) {
    const h = await startHarness({ EMBEDDED_RUNNER: 'false', MAX_QUEUED_PER_USER: '10' });
    cleanups.push(() => h.stop());
    const env = runnerEnv(h, { GPU_ID: '0', RUNNER_HOST: 'box-b', JOBS_PER_GPU: String(perGpu) });
    const a = runnerProcess(env);
    const b = runnerProcess(env);
    cleanups.push(async () => {
      for (const r of [a, b]) r.child.kill('SIGKILL');
    });
    await Promise.all([a.ready(), b.ready()]);
    return { h, a, b };
  }

  it('JOBS_PER_GPU=1: one training on it at a time; when the worker holding the GPU dies, the waiting one takes over and every job runs', {
    timeout: 180_000,
  }, async () => {
    const { h, a, b } = await twoOnOneGpu(1);
    expect((await h.app.bot.runners.list()).map((r) => r.name).sort()).toEqual(['box-b/gpu0', 'box-b/gpu0#2']);
    const sampler = sampleTrainers(h.modelsDir);
    const from = h.lines.length;
    for (let i = 0; i < 2; i++) h.type('/train quick_test');
    // the other worker found the GPU taken and says so in /runners
    const waiting = await until(
      'a worker waiting for the GPU',
      async () =>
        (await h.app.bot.runners.list()).find((r) => r.waitingFor === 'a free slot on box-b/gpu0 (JOBS_PER_GPU=1)')
          ?.name,
      30_000,
    );
    const out = await runnersOutput(h);
    expect(out.find((l) => l.includes(` ${waiting} `))).toMatch(
      / · ⏸️ waiting for a free slot on box-b\/gpu0 \(JOBS_PER_GPU=1\)$/,
    );
    // the worker training dies: its slot lapses, the waiting worker resumes, resumes the job and runs the rest
    const other = a.log().includes(`runner ${waiting} is taking`) ? a : b;
    const holder = other === a ? b : a;
    holder.child.kill('SIGKILL');
    await jobsDone(h, from, 2, 150_000);
    expect(await sampler.stop()).toBe(1);
    expect(startedBy(other.log())).toHaveLength(2);
    expect(h.lines.slice(from).filter((l) => /^❌/.test(l))).toEqual([]);
  });

  it('JOBS_PER_GPU=2: two trainings on it at once', { timeout: 180_000 }, async () => {
    const { h, a, b } = await twoOnOneGpu(2);
    const sampler = sampleTrainers(h.modelsDir);
    const from = h.lines.length;
    for (let i = 0; i < 2; i++) h.type('/train quick_test');
    await jobsDone(h, from, 2, 150_000);
    expect(await sampler.stop()).toBe(2);
    expect([...startedBy(a.log()), ...startedBy(b.log())]).toHaveLength(2);
  });
});

describe('a runner host that trains on its own disk (LOCAL_MODELS_DIR)', () => {
  it('copies the finished model to the shared models folder, checksummed, before latest moves there; its checkpoints stay local', {
    timeout: 120_000,
  }, async () => {
    const h = await startHarness({ EMBEDDED_RUNNER: 'false' });
    cleanups.push(() => h.stop());
    const local = await mkdtemp(join(tmpdir(), 'chatops-local-models-'));
    cleanups.push(() => rm(local, { recursive: true, force: true }));
    const runner = runnerProcess(runnerEnv(h, { RUNNER_HOST: 'box-c', LOCAL_MODELS_DIR: local }));
    cleanups.push(async () => runner.child.kill('SIGKILL'));
    await runner.ready();
    const from = h.lines.length;
    h.type('/train quick_test');
    const done = await h.waitFor(/^✅ job \d+ done/, 90_000, from);
    const name = /model (\S+) \(now latest\)$/.exec(done)?.[1];
    expect(name).toMatch(/^tiny-gpt-oss_quick_test_\d{8}_\d{4}(-\d+)?$/);
    // the shared folder: the model whole, checksums that sha256sum accepts, latest on it, no checkpoints
    const shared = join(h.modelsDir, name!);
    const check = await execa('sha256sum', ['-c', 'SHA256SUMS'], { cwd: shared });
    expect(check.stdout).toMatch(/^adapter_model\.safetensors: OK$/m);
    expect(check.stdout).toMatch(/^training_info\.txt: OK$/m);
    expect((await readdir(shared)).filter((f) => f.startsWith('checkpoint-'))).toEqual([]);
    expect(await readlink(join(h.modelsDir, 'latest'))).toBe(name);
    expect(runner.log()).toMatch(new RegExp(`copied to the shared models folder as ${name}, checksums verified`));
    // the runner's own disk keeps the run, checkpoints included, for a resume on this host
    expect((await readdir(join(local, name!))).some((f) => f.startsWith('checkpoint-'))).toBe(true);
    // and the bot, which reads only the shared folder, lists it
    const listFrom = h.lines.length;
    h.type('/models list');
    await h.waitFor(new RegExp(`^→ ${name} · quick_test · `), 10_000, listFrom);
  });
});
