/**
 * A fleet on one Redis: runner hosts as real processes (`gpu-runner/main.ts`, CPU backend, the real trainer), each a
 * worker pinned to a GPU id, and a bot process (the console) that sees them through their heartbeats. Nothing is
 * replaced but the GPUs: on the CPU backend a "GPU id" names a slot, and the device in /runners is the host's memory.
 */
import { readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunnerView } from '../../src/runners.ts';
import { runnerProcess, trainerPids, waitUntil } from '../helpers/fault-kit.ts';
import { startHarness, type Harness } from '../helpers/harness.ts';

const HEARTBEAT_S = 0.5;

function runnerEnv(h: Harness, extra: Record<string, string>) {
  return {
    REDIS_URL: h.app.redisUrl,
    QUEUE_PREFIX: h.app.bot.config.queuePrefix,
    MODELS_DIR: h.modelsDir,
    TRAINER_BACKEND: 'cpu',
    RUNNER_HEARTBEAT_S: String(HEARTBEAT_S),
    JOB_LOCK_MS: '2000',
    // two trainers at once on this machine's cores: one thread each, or torch's threads fight over them
    OMP_NUM_THREADS: '1',
    ...extra,
  };
}

/** The job ids each runner started, from its log ("job 7: quick_test for ada"). */
const startedBy = (log: string) => [...log.matchAll(/job (\d+): quick_test for ada/g)].map((m) => m[1]!);

/** Types a command and returns the lines it printed, up to the first that matches `end`. */
async function ask(h: Harness, command: string, end: RegExp): Promise<string[]> {
  const from = h.lines.length;
  h.type(command);
  await h.waitFor(end, 10_000, from);
  const lines = h.lines.slice(from);
  return lines.slice(0, lines.findIndex((l) => end.test(l)) + 1);
}

/** /runners as the console prints it: the header line and one line per runner. */
async function runnersOutput(h: Harness): Promise<string[]> {
  const from = h.lines.length;
  h.type('/runners');
  const head = await h.waitFor(/^Runners: |^No runner/, 10_000, from);
  await new Promise((r) => setTimeout(r, 50)); // one message: its lines arrive together
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
      expect(out.find((l) => l.includes(` ${name} `))).toMatch(new RegExp(`^🟢 ${name} · CPU backend, \\d+ × .+ · RAM \\d+\\.\\d/\\d+\\.\\d GiB used · idle$`));
    }
  });

  it('share the jobs: each runs once, on one runner, all four finish, and /runners shows a job and its step while it trains', { timeout: 240_000 }, async () => {
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
    await waitUntil(() => h.lines.slice(from).filter((l) => /^✅ job \d+ done/.test(l)).length === 4, 200_000, `four jobs done; the console printed:\n${h.lines.join('\n')}`);
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

  it('a job that asks for a runner runs there; one that asks for a GPU class no runner has is refused', { timeout: 120_000 }, async () => {
    const refused = await ask(h, '/train quick_test gpu=h100', /^⚠️/);
    expect(refused.at(-1)).toBe('⚠️ no runner is of GPU class h100; /runners lists the runners and their classes');
    const from = h.lines.length;
    h.type('/train quick_test host=box-a/gpu1');
    h.type('/train quick_test host=box-a/gpu1');
    h.type('/train quick_test gpu=cpu host=box-a');
    await waitUntil(() => h.lines.slice(from).filter((l) => /^✅ job \d+ done/.test(l)).length === 3, 100_000, `three jobs done; the console printed:\n${h.lines.join('\n')}`);
    expect(h.lines.slice(from).filter((l) => /^🧪/.test(l))).toEqual([
      expect.stringMatching(/^🧪 Training job \d+: quick_test \(host=box-a\/gpu1\) · /),
      expect.stringMatching(/^🧪 Training job \d+: quick_test \(host=box-a\/gpu1\) · /),
      expect.stringMatching(/^🧪 Training job \d+: quick_test \(host=box-a, gpu=cpu\) · /),
    ]);
    const ids = h.lines.slice(from).flatMap((l) => /^🧪 Training job (\d+)/.exec(l)?.[1] ?? []);
    expect(ids).toHaveLength(3);
    // the two for gpu1 ran there and nowhere else, however often gpu0 took them from the queue first
    for (const id of ids.slice(0, 2)) {
      expect(startedBy(gpu1.log())).toContain(id);
      expect(startedBy(gpu0.log())).not.toContain(id);
    }
  });

  it('a runner killed with -9 goes silent once its heartbeat lapses; one stopped on purpose leaves the list', { timeout: 60_000 }, async () => {
    gpu1.child.kill('SIGKILL');
    await gpu1.child;
    const killedAt = Date.now();
    await waitUntil(async () => (await h.app.bot.runners.list()).some((r) => r.name === 'box-a/gpu1' && !r.live), 10_000, 'box-a/gpu1 to go silent');
    // three missed beats, not sooner (with a beat's worth of slack for the last one sent)
    expect(Date.now() - killedAt).toBeGreaterThan(HEARTBEAT_S * 1000);
    const out = await runnersOutput(h);
    expect(out.join('\n')).toMatch(/^Runners: 1 live · 1 silent \(no heartbeat: crashed or cut off\?\)$/m);
    expect(out.find((l) => l.includes(' box-a/gpu1 '))).toMatch(/^🔇 box-a\/gpu1 · silent since \d\d:\d\d UTC \(\d+ s ago\)$/);
    expect(out.find((l) => l.includes(' box-a/gpu0 '))).toMatch(/^🟢 box-a\/gpu0 · .* · idle$/);

    gpu0.child.kill('SIGTERM');
    await gpu0.child;
    const after = await runnersOutput(h);
    expect(after.join('\n')).toMatch(/^Runners: 0 live · 1 silent/m);
    expect(after.some((l) => l.includes(' box-a/gpu0 '))).toBe(false);
  });
});

describe('two runner processes pinned to the same GPU', () => {
  const cases = [
    { perGpu: 1, most: 1 },
    { perGpu: 2, most: 2 },
  ];
  for (const { perGpu, most } of cases) {
    it(`JOBS_PER_GPU=${perGpu}: at most ${most} training${most > 1 ? 's' : ''} on it at once, and every job runs`, { timeout: 180_000 }, async () => {
      const h = await startHarness({ EMBEDDED_RUNNER: 'false', MAX_QUEUED_PER_USER: '10' });
      const env = runnerEnv(h, { GPU_ID: '0', RUNNER_HOST: 'box-b', JOBS_PER_GPU: String(perGpu) });
      const a = runnerProcess(env);
      const b = runnerProcess(env);
      try {
        await Promise.all([a.ready(), b.ready()]);
        const names = (await h.app.bot.runners.list()).map((r) => r.name).sort();
        expect(names).toEqual(['box-b/gpu0', 'box-b/gpu0#2']);
        let peak = 0;
        let sampling = true;
        const sample = (async () => {
          while (sampling) {
            peak = Math.max(peak, trainerPids(h.modelsDir).length);
            await new Promise((r) => setTimeout(r, 50));
          }
        })();
        const from = h.lines.length;
        for (let i = 0; i < 3; i++) h.type('/train quick_test');
        await waitUntil(() => h.lines.slice(from).filter((l) => /^✅ job \d+ done/.test(l)).length === 3, 150_000, `three jobs done; the console printed:\n${h.lines.join('\n')}`);
        sampling = false;
        await sample;
        expect(peak).toBe(most);
        expect([...startedBy(a.log()), ...startedBy(b.log())]).toHaveLength(3);
      } finally {
        a.child.kill('SIGKILL');
        b.child.kill('SIGKILL');
        await h.stop();
      }
    });
  }
});
