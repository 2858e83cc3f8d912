/**
 * The fault-injection suite: each fault is done for real (kill -9 of a runner host's process or of the trainer, a
 * Redis server crashed and started again, a trainer stopped dead, a disk that cannot take the checkpoint) and each
 * test asserts what the channel shows and what is on disk. The one stand-in: a GPU running out of memory, which this
 * machine has no GPU for, is torch's own OutOfMemoryError raised by the trainer's TRAINER_FAILPOINT.
 */
import { readdir, readFile, writeFile, chmod, mkdtemp, readlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { lossText } from '../../src/bot/format.ts';
import { parseTrainingInfo } from '../../src/shared/model-registry.ts';
import {
  PYTHON,
  RedisServer,
  gone,
  runnerEnvFor,
  runnerProcess,
  running,
  trainerPids,
  waitForTrainer,
  waitUntil,
} from '../helpers/fault-kit.ts';
import { startHarness, type Harness } from '../helpers/harness.ts';
import { APP_ID, DiscordDouble, GUILD_ID } from '../helpers/discord-double.ts';
import { until } from '../helpers/until.ts';
import { execa } from 'execa';
import { REPO_ROOT } from '../../src/shared/config.ts';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

async function harness(env: Record<string, string>): Promise<Harness> {
  const h = await startHarness(env);
  cleanups.push(() => h.stop());
  return h;
}

async function modelsDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'chatops-faults-'));
}

async function folders(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((n) => n.includes('_'));
}

async function info(dir: string, name: string): Promise<Record<string, string>> {
  return parseTrainingInfo(await readFile(join(dir, name, 'training_info.txt'), 'utf8'));
}

/** Whether checkpoint-N is whole: its trainer state (written last) reads back. */
async function checkpointWritten(dir: string, name: string, step: number): Promise<boolean> {
  const text = await readFile(join(dir, name, `checkpoint-${step}`, 'trainer_state.json'), 'utf8').catch(() => '');
  try {
    return JSON.parse(text).global_step === step;
  } catch {
    return false;
  }
}

/** A Python for the runner that runs the real one under `prefix` (a limit, an environment variable). */
async function pythonWrapper(prefix: string): Promise<string> {
  const file = join(await mkdtemp(join(tmpdir(), 'chatops-py-')), 'python');
  await writeFile(file, `#!/bin/sh\n${prefix}\nexec "${PYTHON}" "$@"\n`);
  await chmod(file, 0o755);
  return file;
}

/** A runner host as its own process on the harness's Redis and queue, killed (-9) after the test. */
function runnerHost(h: Harness, dir: string) {
  const runner = runnerProcess(runnerEnvFor(h, dir));
  cleanups.push(async () => runner.child.kill('SIGKILL'));
  return runner;
}

describe('a runner host that dies mid-run', () => {
  it('stopped with SIGTERM: interrupts its trainer (not a cancel) and hands the job back, and the next runner resumes it', {
    timeout: 240_000,
  }, async () => {
    const dir = await modelsDir();
    const h = await harness({ EMBEDDED_RUNNER: 'false', MODELS_DIR: dir });
    const first = runnerHost(h, dir);
    await first.ready();
    h.type('/train conservative');
    const trainer = await waitForTrainer(dir);
    await waitUntil(async () => (await folders(dir)).length === 1, 30_000, 'the model folder');
    const [name] = await folders(dir);
    await waitUntil(() => checkpointWritten(dir, name!, 25), 120_000, 'checkpoint-25');
    first.child.kill('SIGTERM');
    await first.child;
    expect(running(trainer)).toBe(false);
    expect((await info(dir, name!)).status).toBe('interrupted');
    expect(h.lines.some((l) => /job 1 (failed|cancelled)/.test(l))).toBe(false);

    const second = runnerHost(h, dir);
    await h.waitFor(/✅ job 1 done/, 200_000).catch((e) => {
      throw new Error(`${e}\nfirst runner:\n${first.log()}\nsecond runner:\n${second.log()}`);
    });
    await h.waitFor(/ℹ️ job 1: resumed from step (25|50|75) \(checkpoint-\d+\)/, 1);
    expect(await folders(dir)).toEqual([name]);
    expect((await info(dir, name!)).resumes).toBe('1');
  });

  it('killed with -9: another runner resumes the job from the newest checkpoint, in the same folder, to the right final loss', {
    timeout: 240_000,
  }, async () => {
    const dir = await modelsDir();
    const h = await harness({ EMBEDDED_RUNNER: 'false', MODELS_DIR: dir });
    const first = runnerHost(h, dir);
    await first.ready();

    h.type('/train conservative'); // 100 steps, a checkpoint every 25
    const trainer = await waitForTrainer(dir);
    const trainingSince = Date.now();
    await waitUntil(async () => (await folders(dir)).length === 1, 30_000, 'the model folder');
    const [name] = await folders(dir);
    await waitUntil(() => checkpointWritten(dir, name!, 25), 120_000, 'checkpoint-25');
    first.child.kill('SIGKILL'); // the host dies: nothing of the runner runs any more
    await first.child;

    // The trainer is in its own process group, out of reach of the kill: it notices its parent is gone and stops.
    await gone(trainer);
    expect((await info(dir, name!)).status).toBe('interrupted');

    const second = runnerHost(h, dir);
    await second.ready();
    const done = await h.waitFor(/✅ job 1 done/, 200_000);
    // the done line's time is the whole run's, both attempts and the time between them, not the last attempt's
    const [, m, s] = / · (\d+):(\d\d) · model /.exec(done)!;
    // (less the delivery of the done line and the rounding to whole seconds; the last attempt alone is 15 s shorter)
    expect(Number(m) * 60 + Number(s)).toBeGreaterThanOrEqual((Date.now() - trainingSince) / 1000 - 4);

    const resumedLine = await h.waitFor(/job 1 \[.*↩️ resumed from step (\d+)/, 1);
    const from = Number(/resumed from step (\d+)/.exec(resumedLine)![1]);
    expect([25, 50, 75]).toContain(from);
    await h.waitFor(new RegExp(`ℹ️ job 1: resumed from step ${from} \\(checkpoint-${from}\\)`), 1);
    expect(h.lines.some((l) => /↩️ job 1: resuming on/.test(l))).toBe(true);

    // One folder, finished, with the whole run's losses: the final loss is the mean of the last ten of all 100.
    expect(await folders(dir)).toEqual([name]);
    const facts = await info(dir, name!);
    expect(facts).toMatchObject({ status: 'succeeded', steps: '100', resumes: '1', resumed_from_step: String(from) });
    const history = JSON.parse(await readFile(join(dir, name!, 'loss_history.json'), 'utf8')) as number[];
    expect(history).toHaveLength(100);
    const mean = history.slice(-10).reduce((a, b) => a + b, 0) / 10;
    expect(done).toContain(`final loss ${lossText(mean)}`);
    expect(done).toContain('🔴 Underfitted'); // the tiny model's band, as an unbroken run gets it
    expect(await readlink(join(dir, 'latest'))).toBe(name);
    expect(trainerPids(dir)).toEqual([]);
  });

  it('killed with -9 while another runner stands by: the job resumes within JOB_LOCK_MS + 5 s', {
    timeout: 240_000,
  }, async () => {
    const dir = await modelsDir();
    const h = await harness({ EMBEDDED_RUNNER: 'false', MODELS_DIR: dir });
    const lockMs = 10_000; // a third of the default, so the test is short; the bound scales with it
    const env = runnerEnvFor(h, dir, { JOB_LOCK_MS: String(lockMs) });
    const first = runnerProcess(env);
    cleanups.push(async () => first.child.kill('SIGKILL'));
    await first.ready();
    h.type('/train standard');
    await h.waitFor(/job 1 \[.*\] [1-9]\d*\/200/, 120_000);
    const standby = runnerProcess(env);
    cleanups.push(async () => standby.child.kill('SIGKILL'));
    await standby.ready();
    const from = h.lines.length;
    const killedAt = Date.now();
    first.child.kill('SIGKILL');
    await h.waitFor(/^↩️ job 1: resuming on /, 60_000, from);
    const seconds = (Date.now() - killedAt) / 1000;
    // the README's promise: the lock lapses within JOB_LOCK_MS of the last renewal, and the standby's stalled check
    // (every min(5 s, JOB_LOCK_MS / 2)) sees it within 5 s of that; 3 s more for the pickup and the message on a busy
    // machine
    console.log(`kill -9 to resume on the standby runner: ${seconds.toFixed(1)} s (JOB_LOCK_MS=${lockMs})`);
    expect(
      seconds,
      `killed at ${new Date(killedAt).toISOString()}; the standby runner printed:\n${standby.log()}`,
    ).toBeLessThan(lockMs / 1000 + 5 + 3);
    h.type('/train cancel 1');
    await h.waitFor(/🛑 job 1 cancelled by/, 30_000);
  });

  it('a cancel from another bot process lands in every state: waiting, running on a runner host, and while its runner is dead', async () => {
    const dir = await modelsDir();
    const h = await harness({ EMBEDDED_RUNNER: 'false', MODELS_DIR: dir, CONSOLE_USER: 'ada' });
    // a second bot process's worth of state: its own connection and queue, the same Redis and prefix
    const other = await harness({
      EMBEDDED_RUNNER: 'false',
      MODELS_DIR: dir,
      CONSOLE_USER: 'ada',
      QUEUE_PREFIX: h.app.bot.config.queuePrefix,
    });

    h.type('/train quick_test'); // job 1 waits: no runner yet
    await h.waitFor(/Training job 1/);
    other.type('/train cancel 1');
    await other.waitFor(/job 1.*(cancelled|removed)/i);
    await h.waitFor(/🛑 job 1 cancelled by ada/);

    const runner = runnerHost(h, dir);
    await runner.ready();
    h.type('/train conservative'); // job 2 runs on the runner host
    let trainer = await waitForTrainer(dir);
    await h.waitFor(/job 2 \[/);
    other.type('/train cancel 2');
    await h.waitFor(/🛑 job 2 cancelled by ada/, 30_000);
    await gone(trainer);

    h.type('/train conservative'); // job 3: its runner dies after the first checkpoint
    await h.waitFor(/Training job 3/);
    await waitUntil(async () => (await folders(dir)).length === 2, 30_000, 'job 3 folder');
    const name = (await folders(dir)).sort().at(-1)!;
    trainer = await waitForTrainer(dir);
    await waitUntil(() => checkpointWritten(dir, name, 25), 120_000, 'checkpoint-25');
    runner.child.kill('SIGKILL');
    await gone(trainer);
    other.type('/train cancel 3'); // nobody runs it now, and no runner is alive
    await other.waitFor(/job 3/, 10_000, other.lines.length);
    // final once the dead runner's lock lapses (JOB_LOCK_MS=2000 here), with no runner needed to end it
    const end = await h.waitFor(/🛑 job 3 cancelled by ada/, 15_000);
    // it says how far the run had got, and it never trained further: no resume line, its folder marked as a cancel
    // leaves it, and it never became latest
    expect(Number(/ at step (\d+)$/.exec(end)?.[1])).toBeGreaterThanOrEqual(25);
    // the bot that took the cancel marks the folder once the job has ended
    await waitUntil(async () => (await info(dir, name)).status === 'cancelled', 10_000, 'the folder marked cancelled');
    expect((await info(dir, name)).error).toBe(end.replace(/^🛑 job 3 /, ''));
    expect(await h.app.bot.queue.queue.getJobCounts('active', 'waiting', 'prioritized')).toEqual({
      active: 0,
      waiting: 0,
      prioritized: 0,
    });
    // a runner that comes back later finds nothing of it to run
    const next = runnerHost(h, dir);
    await next.ready();
    await new Promise((r) => setTimeout(r, 3_000));
    expect(h.lines.some((l) => /job 3.*resum/.test(l))).toBe(false);
    expect(trainerPids(dir)).toEqual([]);
    expect((await info(dir, name)).status).toBe('cancelled');
    await expect(readlink(join(dir, 'latest'))).rejects.toThrow();
  });
});

/** The Discord double, a models folder, and a harness (no runner) for the Redis and the queue prefix. */
async function discordStage() {
  const double = new DiscordDouble();
  await double.start();
  cleanups.push(() => double.stop());
  const dir = await modelsDir();
  const h = await harness({ EMBEDDED_RUNNER: 'false', MODELS_DIR: dir });
  return { double, dir, h };
}

/** The bot as its own process, serving Discord (the double) from the harness's Redis and queue prefix. */
function discordBot(double: DiscordDouble, h: Harness, dir: string) {
  const child = execa('node', ['--import', 'tsx', 'src/main.ts'], {
    cwd: REPO_ROOT,
    env: {
      DISCORD_TOKEN: 'fault-suite-token.not-a-real-one.xxxxxxxxxxxx',
      DISCORD_APPLICATION_ID: APP_ID,
      DISCORD_GUILD_ID: GUILD_ID,
      DISCORD_API_BASE: double.apiBase,
      REDIS_URL: h.app.redisUrl,
      QUEUE_PREFIX: h.app.bot.config.queuePrefix,
      EMBEDDED_RUNNER: 'false',
      MODELS_DIR: dir,
      PROGRESS_EDIT_INTERVAL_MS: '100',
      LOG_LEVEL: 'info',
    },
    extendEnv: true,
    reject: false,
    stdin: 'ignore',
  });
  let log = '';
  child.stdout?.on('data', (d: Buffer) => (log += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (log += d.toString()));
  cleanups.push(async () => child.kill('SIGKILL'));
  return Object.assign(child, { log: () => log });
}

describe('the bot process killed mid-run', () => {
  it("loses nothing: a new bot process finds the job's Discord message and edits it to the end", {
    timeout: 240_000,
  }, async () => {
    const { double, dir, h } = await discordStage();
    const runner = runnerHost(h, dir);
    await runner.ready();
    const bot = () => discordBot(double, h, dir);
    const first = bot();
    await double.identified;
    const { token } = double.slash('train', 'conservative', {}, { id: '1600000000000000001', name: 'ada' });
    const msg = await until(
      'progress in the job message',
      () => {
        const m = double.original(token);
        return m && /\d+\/100/.test(m.content) && m;
      },
      60_000,
    );
    first.kill('SIGKILL');
    await first;
    const editsBefore = msg.history.length;
    const stepAtKill = Number(/(\d+)\/100/.exec(msg.content)![1]);

    const second = bot(); // a new process: it knows nothing but what Redis holds
    await until("the job's end on the same message", () => /✅ job \d+ done/.test(msg.content), 200_000).catch((e) => {
      throw new Error(`${e}\nmessage: ${msg.content}\nbot:\n${second.log()}\nrunner:\n${runner.log()}`);
    });
    const after = msg.history.slice(editsBefore);
    expect(after.length).toBeGreaterThan(0);
    expect(
      after.some((e) => {
        const m = /(\d+)\/100/.exec(e.content);
        return m && Number(m[1]) > stepAtKill;
      }),
    ).toBe(true);
    // one job message: the new process edited it rather than posting another
    const jobMessages = [...double.messages.values()].filter((m) => /Training job/.test(m.content));
    expect(jobMessages.map((m) => m.id)).toEqual([msg.id]);
    expect((await info(dir, (await folders(dir))[0]!)).status).toBe('succeeded');
  });
});

describe('the bot process killed, and the job ending before a new one is up', () => {
  it("the new bot process finishes the job's message with the result and the loss curve", async () => {
    const { double, dir, h } = await discordStage();
    const first = discordBot(double, h, dir);
    await double.identified;
    const { token } = double.slash('train', 'quick_test', {}, { id: '1600000000000000001', name: 'ada' });
    const msg = await until(
      'the job message',
      () => {
        const m = double.original(token);
        return m && /Training job/.test(m.content) && m;
      },
      30_000,
    );
    await until(
      'the message id stored with the job',
      async () => (await h.app.bot.queue.pending())[0]?.data.origin.messageId === msg.id,
    );
    first.kill('SIGKILL');
    await first;
    runnerHost(h, dir); // trains while no bot process is up
    await until(
      'the job done',
      async () => (await h.app.bot.queue.queue.getJobCounts('completed')).completed === 1,
      120_000,
    );
    expect(msg.content).not.toMatch(/✅/);

    const second = discordBot(double, h, dir);
    await until(
      'the result in the same message',
      () => /✅ job 1 done · final loss [\d.]+ 🔴 Underfitted/.test(msg.content),
      60_000,
    ).catch((e: Error) => {
      throw new Error(
        `${e.message}; the message reads:\n${msg.content}\nthe new bot process printed:\n${second.log()}`,
      );
    });
    expect(msg.files.map((f) => f.name)).toEqual(['loss-curve-job-1.png']);
    expect([...double.messages.values()].filter((m) => /Training job/.test(m.content))).toHaveLength(1);
  });
});

describe('the bot process killed while an /ask waits', () => {
  it("a new bot process finishes the ask's message with the answer that came while no bot was up", async () => {
    const { double, dir, h } = await discordStage();
    const first = discordBot(double, h, dir);
    await double.identified;
    const { token } = double.slash(
      'ask',
      undefined,
      { model: 'base', prompt: 'Say hello to Ada.' },
      { id: '1600000000000000001', name: 'ada' },
    );
    const msg = await until(
      'the ask message',
      () => {
        const m = double.original(token);
        return m && /…/.test(m.content) && m;
      },
      30_000,
    );
    expect(msg.content).toMatch(/💬 \*\*base\*\* · ada asked: Say hello to Ada\.\n…/);
    const asks = h.app.bot.asks.queue;
    await until(
      'the message id stored with the ask',
      async () => (await asks.getJobs(['waiting']))[0]?.data.origin.messageId === msg.id,
    );
    first.kill('SIGKILL');
    await first;

    runnerHost(h, dir); // the answer comes while no bot process is up
    await until('the ask answered', async () => (await asks.getJobCounts('completed')).completed === 1, 90_000);
    expect(msg.content).toMatch(/\n…$/);

    const second = discordBot(double, h, dir);
    await until('the answer in the same message', () => /— base · \d+ tokens/.test(msg.content), 60_000).catch(
      (e: Error) => {
        throw new Error(
          `${e.message}; the message reads:\n${msg.content}\nthe new bot process printed:\n${second.log()}`,
        );
      },
    );
    expect([...double.messages.values()].filter((m) => /💬 \*\*base\*\*/.test(m.content))).toHaveLength(1);
  });
});

describe('Redis restarting mid-run', () => {
  it('keeps the trainer running, answers commands during the outage with "queue unavailable", and the job ends as usual', async () => {
    const redis = await RedisServer.start();
    cleanups.push(() => redis.stop());
    const dir = await modelsDir();
    const h = await harness({ REDIS_URL: redis.url, EMBEDDED_RUNNER: 'true', MODELS_DIR: dir });
    h.type('/train conservative');
    const trainer = await waitForTrainer(dir);
    await h.waitFor(/job 1 \[/);

    await redis.crash();
    const from = h.lines.length;
    h.type('/queue');
    await h.waitFor(/unavailable/i, 15_000, from);
    expect(running(trainer)).toBe(true);
    await new Promise((r) => setTimeout(r, 1500));
    await redis.up();

    await h.waitFor(/✅ job 1 done/, 120_000);
    expect(h.lines.some((l) => /resum/.test(l))).toBe(false); // the same trainer went on: no restart, no resume
    // as a user would after an outage: /queue again until it answers (the bot's connections come back one by one)
    await waitUntil(
      async () => {
        const after = h.lines.length;
        h.type('/queue');
        const answer = await h.waitFor(/The queue is empty|unavailable/, 15_000, after);
        return /The queue is empty/.test(answer) || (await new Promise((r) => setTimeout(r, 500)), false);
      },
      30_000,
      'the queue shown again',
    );
    const [name] = await folders(dir);
    expect((await info(dir, name!)).status).toBe('succeeded');
  });
});

describe('a trainer that fails', () => {
  async function failingRun(env: Record<string, string>, act?: (dir: string, pid: number) => Promise<void>) {
    const dir = await modelsDir();
    const h = await harness({ EMBEDDED_RUNNER: 'true', MODELS_DIR: dir, ...env });
    h.type('/train quick_test');
    if (act) {
      const pid = await waitForTrainer(dir);
      await h.waitFor(/job 1 \[/);
      await act(dir, pid);
    }
    const line = await h.waitFor(/❌ job 1 failed/, 120_000);
    await waitUntil(() => trainerPids(dir).length === 0, 15_000, 'no trainer left'); // the GPU is free again
    const names = await folders(dir);
    await expect(readlink(join(dir, 'latest'))).rejects.toThrow(); // never latest
    return { line, dir, names, h };
  }

  it('killed by the kernel (kill -9): one line, and the runner marks the folder failed', async () => {
    const { line, dir, names } = await failingRun({}, async (_dir, pid) => void process.kill(pid, 'SIGKILL'));
    expect(line).toMatch(/failed: the trainer was killed by SIGKILL/);
    expect(line.split('\n')).toHaveLength(1);
    expect(await info(dir, names[0]!)).toMatchObject({
      status: 'failed',
      error: expect.stringMatching(/killed by SIGKILL/),
    });
  });

  it('hanging without output: the watchdog stops it after TRAINER_STALL_TIMEOUT_S', async () => {
    // above the silence of Python's imports at the start (a few seconds here), which the watchdog also watches
    const { line, dir, names } = await failingRun(
      { TRAINER_STALL_TIMEOUT_S: '10', TRAINER_KILL_GRACE_MS: '500' },
      async (_dir, pid) => void process.kill(pid, 'SIGSTOP'),
    );
    expect(line).toMatch(/failed: the trainer printed nothing for 10 s and was stopped \(TRAINER_STALL_TIMEOUT_S=10\)/);
    expect((await info(dir, names[0]!)).status).toBe('failed');
  });

  it('out of GPU memory: says so and what to try', async () => {
    const { line, dir, names } = await failingRun({
      PYTHON: await pythonWrapper('export TRAINER_FAILPOINT=oom_at_step:3'),
    });
    expect(line).toMatch(/failed: out of GPU memory at step 3: try the conservative profile or a smaller r/);
    expect((await info(dir, names[0]!)).status).toBe('out_of_memory');
  });

  it('a full disk (a file-size limit makes the checkpoint write fail): says so, and no model is half written', async () => {
    const { line, dir, names } = await failingRun({ PYTHON: await pythonWrapper('ulimit -f 100') });
    expect(line).toMatch(/failed: the models disk is full \(at step 10\): free some space, then \/train again/);
    expect((await info(dir, names[0]!)).status).toBe('disk_full');
    expect(await readdir(join(dir, names[0]!))).not.toContain('adapter_model.safetensors');
  });

  it('a truly full filesystem (a 2 MB tmpfs): the failed folder says disk_full, with no partial file left', async (t) => {
    const dir = await modelsDir();
    const mounted = await execa('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', dir], { reject: false });
    if (mounted.exitCode !== 0) {
      t.skip(
        `this machine lets the test mount no tmpfs (${mounted.stderr.trim() || `exit ${mounted.exitCode}`}); the file-size limit above stands in`,
      );
      return;
    }
    cleanups.push(() => execa('umount', ['-l', dir]));
    const h = await harness({ EMBEDDED_RUNNER: 'true', MODELS_DIR: dir, MIN_FREE_DISK_GB: '0' });
    h.type('/train quick_test'); // fits: about 1.2 MB with its checkpoints
    await h.waitFor(/✅ job 1 done/, 120_000);
    const [first] = await folders(dir);
    h.type('/train quick_test'); // does not: the disk fills while it saves a checkpoint
    expect(await h.waitFor(/❌ job 2 failed/, 120_000)).toBe(
      '❌ job 2 failed: the models disk is full (at step 30): free some space, then /train again',
    );
    const second = (await folders(dir)).find((n) => n !== first)!;
    expect(await info(dir, second)).toMatchObject({
      status: 'disk_full',
      error: 'the models disk is full (at step 30): free some space, then /train again',
    });
    // what the full disk cut short is gone; the whole checkpoints stay for whoever frees space and trains again
    const left = await readdir(join(dir, second));
    expect(left.filter((f) => f.includes('tmp'))).toEqual([]);
    for (const c of left.filter((f) => f.startsWith('checkpoint-')))
      expect(await checkpointWritten(dir, second, Number(c.split('-')[1]))).toBe(true);
    expect(await readlink(join(dir, 'latest'))).toBe(first);
    const from = h.lines.length;
    h.type('/models list');
    await h.waitFor(new RegExp(`^  ${second} · quick_test · .* · ❌ disk full · r=8$`), 10_000, from);
  });

  it('a read-only models folder: one line with the cause and what to do, before any trainer starts', async (t) => {
    const dir = await modelsDir();
    const mounted = await execa('mount', ['-t', 'tmpfs', '-o', 'ro,size=1m', 'tmpfs', dir], { reject: false });
    if (mounted.exitCode !== 0) {
      t.skip(`this machine lets the test mount no tmpfs (${mounted.stderr.trim() || `exit ${mounted.exitCode}`})`);
      return;
    }
    cleanups.push(() => execa('umount', ['-l', dir]));
    const h = await harness({ EMBEDDED_RUNNER: 'true', MODELS_DIR: dir });
    h.type('/train quick_test');
    expect(await h.waitFor(/❌ job 1 failed/, 60_000)).toMatch(
      /^❌ job 1 failed: the models folder on \S+ is on a read-only filesystem: make it writable \(or point MODELS_DIR at a folder that is\), then \/train again$/,
    );
  });

  it('is not even started when the disk is short, and the channel is told how much is free', async () => {
    const { line, names } = await failingRun({ MIN_FREE_DISK_GB: '1000000' });
    expect(line).toMatch(/failed: only [\d.]+ GB free for models on \S+ \(MIN_FREE_DISK_GB=1000000\): free some space/);
    expect(names).toEqual([]);
  });
});
