/**
 * What a user sees on the console, on model folders written by hand in a temp models folder (no runner, no training):
 * /models archived and /models restore; the loss curve in text where the platform takes no files (/models info and
 * compare); /ask and /chat refusing a model name in the bot, before anything is queued or counted; a first word of
 * the prompt that was meant as a reasoning effort; and which device an ask waits for while a training runs.
 */
import { cp, lstat, mkdir, mkdtemp, readdir, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CommandContext } from '../../src/bot/command-kit.ts';
import { TRAIN_QUEUE } from '../../src/shared/jobs.ts';
import { closeRedis, connectRedis } from '../../src/shared/redis.ts';
import type { RunnerBeat } from '../../src/shared/runner-registry.ts';
import { startHarness, type Harness } from '../helpers/harness.ts';

const M1 = 'tiny-gpt-oss_quick_test_20250101_1000';
const M2 = 'tiny-gpt-oss_quick_test_20250102_1000'; // latest
const FAILED = 'tiny-gpt-oss_quick_test_20250103_1000';
const CANCELLED = 'tiny-gpt-oss_standard_20250104_1000';
const A_OLD = 'tiny-gpt-oss_quick_test_20240101_0900';
const A_NEW = 'tiny-gpt-oss_standard_20240301_0900';
/** M1's step losses: from 6.81 down to 3.35 in 30 steps, one of them not finite (null, as the trainer writes NaN). */
const M1_LOSSES = Array.from({ length: 30 }, (_, i) => (i === 10 ? null : Number((6.81 - (3.46 * i) / 29).toFixed(4))));
const SPARK = '[▁▂▃▄▅▆▇█ ]+';

let modelsDir: string;

/** A model folder as the trainer leaves one: training_info.txt, the adapter, and the loss history when given. */
async function folder(path: string, info: Record<string, string | number>, losses?: (number | null)[]): Promise<void> {
  const dir = join(modelsDir, path);
  await mkdir(dir, { recursive: true });
  await writeFile(
    join(dir, 'training_info.txt'),
    `# written by a test\n${Object.entries(info)
      .map(([k, v]) => `${k}: ${v}`)
      .join('\n')}\n`,
  );
  await writeFile(join(dir, 'adapter_model.safetensors'), 'not really weights');
  await writeFile(join(dir, 'adapter_config.json'), '{}');
  if (losses) await writeFile(join(dir, 'loss_history.json'), JSON.stringify(losses));
}

const exists = (path: string) =>
  lstat(join(modelsDir, path)).then(
    () => true,
    () => false,
  );

/** Types a line into `h` and returns what it printed (the first line, then whatever follows within 200 ms). */
async function say(h: Harness, line: string): Promise<string[]> {
  const from = h.lines.length;
  h.type(line);
  await h.waitFor(/./, 15_000, from);
  await new Promise((r) => setTimeout(r, 200));
  return h.lines.slice(from);
}

/**
 * Types a line that may print nothing on a pipe (an ask's message shows once it is answered): waits until an ask was
 * queued or something was printed, then for anything else it prints.
 */
async function quietly(h: Harness, line: string): Promise<string[]> {
  const from = h.lines.length;
  // BullMQ's id counter of the ask queue: any ask added moves it
  const asks = async () => Number((await h.app.connection.get(`${h.app.bot.config.queuePrefix}:ask:id`)) ?? 0);
  const before = await asks();
  h.type(line);
  await expect.poll(async () => h.lines.length > from || (await asks()) > before, { timeout: 15_000 }).toBe(true);
  await new Promise((r) => setTimeout(r, 300));
  return h.lines.slice(from);
}

const waitingAsks = (h: Harness) =>
  h.app.bot.asks.queue
    .getJobCounts('waiting', 'active', 'prioritized', 'delayed')
    .then((c) => Object.values(c).reduce((a, b) => a + b, 0));

beforeAll(async () => {
  modelsDir = await mkdtemp(join(tmpdir(), 'chatops-archive-asks-'));
  await folder(M1, { status: 'succeeded', final_loss: '3.3500', lora_r: 8, profile: 'quick_test' }, M1_LOSSES);
  await folder(
    M2,
    { status: 'succeeded', final_loss: '0.5123', lora_r: 4, profile: 'quick_test' },
    [2, 1.5, 1, 0.8, 0.6, 0.5],
  );
  await folder(FAILED, { status: 'failed', error: 'boom', profile: 'quick_test' });
  await folder(CANCELLED, { status: 'cancelled', profile: 'standard' }, [5, 4]);
  await folder(
    `archive/${A_OLD}`,
    { status: 'succeeded', final_loss: '0.9000', lora_r: 8, profile: 'quick_test' },
    [3, 2, 1],
  );
  await folder(
    `archive/${A_NEW}`,
    { status: 'succeeded', final_loss: '0.5123', lora_r: 16, profile: 'standard' },
    [3, 2, 0.5],
  );
  await symlink(M2, join(modelsDir, 'latest'));
});
afterAll(() => rm(modelsDir, { recursive: true, force: true }));

describe('/models archived and /models restore', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ MODELS_DIR: modelsDir, EMBEDDED_RUNNER: 'false', ALLOW_MANAGE_MODELS: 'user:ada' });
  });
  afterAll(() => h?.stop());

  it('archived lists the models in archive/, newest first, in the rows of /models list', async () => {
    const out = await say(h, '/models archived');
    expect(out[0]).toBe('Archived models (newest first, 2):');
    expect(out[1]).toMatch(new RegExp(`^  ${A_NEW} · standard · 2024-03-01 09:00 · loss 0\\.512 \\S+ \\w+ · r=16$`));
    expect(out[2]).toMatch(new RegExp(`^  ${A_OLD} · quick_test · 2024-01-01 09:00 · loss 0\\.900 \\S+ \\w+ · r=8$`));
    expect(out).toHaveLength(3);
  });

  it('restore moves a model back into the list, whole, and tells the channel who did it', async () => {
    expect(await say(h, `/models restore ${A_OLD}`)).toEqual([
      `📤 ada restored ${A_OLD} from archive/; /models list shows it again`,
    ]);
    expect(await exists(`archive/${A_OLD}`)).toBe(false);
    expect((await readdir(join(modelsDir, A_OLD))).sort()).toEqual([
      'adapter_config.json',
      'adapter_model.safetensors',
      'loss_history.json',
      'training_info.txt',
    ]);
    expect((await say(h, '/models list')).join('\n')).toMatch(
      new RegExp(`^  ${A_OLD} · quick_test · 2024-01-01 09:00 · loss 0\\.900`, 'm'),
    );
    expect(await say(h, '/models archived')).toEqual([
      'Archived models (newest first, 1):',
      expect.stringContaining(A_NEW),
    ]);
    // and back again, so the rest of the file sees the folders as they were
    expect(await say(h, `/models archive ${A_OLD}`)).toEqual([`🗄️ ada archived ${A_OLD} (kept in archive/)`]);
  });

  it('refuses, in one line each, a name models/ holds, a name archive/ does not hold, and a path; moving nothing', async () => {
    expect(await say(h, `/models restore ${M1}`)).toEqual([
      `⚠️ ${M1} is in models/ already (/models list shows it); nothing was moved`,
    ]);
    expect(await say(h, '/models restore tiny-gpt-oss_quick_test_20990101_0000')).toEqual([
      "⚠️ archive/ holds no model 'tiny-gpt-oss_quick_test_20990101_0000'; /models archived lists what it holds",
    ]);
    expect(await say(h, '/models restore archive')).toEqual([
      "⚠️ archive/ holds no model 'archive'; /models archived lists what it holds",
    ]);
    expect(await say(h, '/models restore ../../etc')).toEqual(['⚠️ a model is named by its folder name, not a path']);
    // the same name on both sides: the archived copy stays where it is, the listed one is not overwritten
    await cp(join(modelsDir, 'archive', A_NEW), join(modelsDir, A_NEW), { recursive: true });
    await writeFile(join(modelsDir, A_NEW, 'marker'), 'the listed copy');
    expect(await say(h, `/models restore ${A_NEW}`)).toEqual([
      `⚠️ ${A_NEW} is in models/ already (/models list shows it); nothing was moved`,
    ]);
    expect(await exists(`archive/${A_NEW}/adapter_model.safetensors`)).toBe(true);
    expect(await exists(`${A_NEW}/marker`)).toBe(true);
    await rm(join(modelsDir, A_NEW), { recursive: true });
  });

  it('restore needs ALLOW_MANAGE_MODELS, like archive; archived does not', async () => {
    const eve = await startHarness({
      CONSOLE_USER: 'eve',
      MODELS_DIR: modelsDir,
      EMBEDDED_RUNNER: 'false',
      ALLOW_MANAGE_MODELS: 'user:ada',
    });
    try {
      expect(await say(eve, `/models restore ${A_NEW}`)).toEqual([
        '⚠️ you may not run /models restore here (ALLOW_MANAGE_MODELS); ask whoever runs the bot',
      ]);
      expect(await exists(`archive/${A_NEW}`)).toBe(true);
      expect((await say(eve, '/models archived'))[0]).toBe('Archived models (newest first, 2):');
    } finally {
      await eve.stop();
    }
  });
});

describe('the loss curve on a platform that takes no files', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ MODELS_DIR: modelsDir, EMBEDDED_RUNNER: 'false' });
  });
  afterAll(() => h?.stop());

  it('/models info ends with a sparkline: first and last loss, the curve, the steps (a non-finite one left out)', async () => {
    const out = await say(h, `/models info ${M1}`);
    expect(out[0]).toMatch(new RegExp(`^${M1} · \\d+ KB on disk$`));
    const curve = out.at(-1)!;
    expect(curve).toMatch(new RegExp(`^loss 6\\.81 ${SPARK} 3\\.35 \\(30 steps, 1 not finite\\)$`));
    const bars = /^loss 6\.81 (.+) 3\.35/.exec(curve)![1]!;
    expect([...bars]).toHaveLength(30);
    expect(bars[0]).toBe('█');
    expect(bars.at(-1)).toBe('▁');
    expect(bars[10]).toBe(' '); // the null
    expect((await say(h, `/models info ${FAILED}`)).at(-1)).toBe('no loss history (loss_history.json)');
  });

  it('/models compare shows one sparkline per model, labelled with its colour and name, on one scale', async () => {
    const out = await say(h, `/models compare ${M1} ${M2}`);
    expect(out[0]).toBe(`Comparing 🔵 ${M1} | 🟠 ${M2}`);
    expect(out.at(-2)).toMatch(new RegExp(`^🔵 ${M1} loss 6\\.81 ${SPARK} 3\\.35 \\(30 steps, 1 not finite\\)$`));
    expect(out.at(-1)).toMatch(new RegExp(`^🟠 ${M2} loss 2\\.00 ${SPARK} 0\\.500 \\(6 steps\\)$`));
    expect(out.at(-1)).toContain(' ▃▂▂▁▁▁ '); // M2's losses are all below M1's: low on the shared scale
    expect((await say(h, `/models compare ${M1} ${FAILED}`)).at(-1)).toBe(
      `🟠 ${FAILED} no loss history (loss_history.json)`,
    );
  });
});

describe('/ask and /chat check the model name in the bot', () => {
  let h: Harness;
  const KNOWN = `known: latest, base, ${M2}, ${M1}`;
  beforeAll(async () => {
    h = await startHarness({ MODELS_DIR: modelsDir, EMBEDDED_RUNNER: 'false', ASKS_PER_MINUTE: '100' });
  });
  afterAll(() => h?.stop());

  it('refuses archive/, a misspelled name and an unfinished run, naming the usable models; queues nothing', async () => {
    expect(await say(h, '/ask archive hi')).toEqual([`⚠️ archive/ holds the archived models and is not one; ${KNOWN}`]);
    expect(await say(h, `/ask ${M1.replace('quick', 'quik')} hi`)).toEqual([
      `⚠️ no model '${M1.replace('quick', 'quik')}'; ${KNOWN}`,
    ]);
    expect(await say(h, `/ask ${A_NEW} hi`)).toEqual([`⚠️ no model '${A_NEW}'; ${KNOWN}`]); // archived: not askable
    expect(await say(h, `/ask ${FAILED} hi`)).toEqual([
      `⚠️ ${FAILED} did not finish training (failed), so it cannot answer; ${KNOWN}`,
    ]);
    expect(await say(h, `/ask ${CANCELLED} hi`)).toEqual([
      `⚠️ ${CANCELLED} did not finish training (cancelled), so it cannot answer; ${KNOWN}`,
    ]);
    expect(await say(h, '/chat archive')).toEqual([`⚠️ archive/ holds the archived models and is not one; ${KNOWN}`]);
    expect(await say(h, '/chat nope')).toEqual([`⚠️ no model 'nope'; ${KNOWN}`]);
    expect(await say(h, '/models info archive')).toEqual([
      `⚠️ archive/ holds the archived models and is not one (/models archived lists them); try latest or one of ${M2}, ${M1}`,
    ]);
    expect(await waitingAsks(h)).toBe(0);
    expect(await h.app.bot.chats.get('console', 'console')).toBeNull();
  });

  it('a name with a trailing newline (a platform that names its options) is refused and queues nothing', async () => {
    const said: string[] = [];
    const ctx: CommandContext = {
      user: { id: 'U1', name: 'ada', platform: 'console', roles: [] },
      channelId: 'c',
      surface: {
        platform: 'console',
        editIntervalMs: 0,
        minEditIntervalMs: 0,
        post: async () => ({ channelId: 'c', id: '1' }),
        edit: async () => undefined,
      },
      bot: h.app.bot,
      reply: async (text) => (said.push(text), { channelId: 'c', id: String(said.length) }),
      replyPrivate: async (text) => void said.push(text),
    };
    for (const model of ['archive\n', `${M2}\n`, 'latest\n'])
      await h.app.bot.commands.dispatchNamed('ask', undefined, { model, prompt: 'hi' }, ctx);
    expect(said).toHaveLength(3);
    for (const line of said) expect(line).toMatch(/^⚠️ /);
    expect(await waitingAsks(h)).toBe(0);
  });

  it('base, latest and a finished model are queued; latest must exist', async () => {
    expect(await quietly(h, '/ask base one')).toEqual([]);
    expect(await quietly(h, `/ask ${M1} two`)).toEqual([]);
    expect(await quietly(h, '/ask latest three')).toEqual([]);
    expect(await waitingAsks(h)).toBe(3);
    await unlink(join(modelsDir, 'latest'));
    try {
      expect(await say(h, '/ask latest four')).toEqual(['⚠️ no model is latest yet; /train quick_test makes one']);
      expect(await say(h, '/chat')).toEqual(['⚠️ no model is latest yet; /train quick_test makes one']);
      expect(await say(h, '/ask nope hi')).toEqual([`⚠️ no model 'nope'; known: base, ${M2}, ${M1}`]);
    } finally {
      await symlink(M2, join(modelsDir, 'latest'));
    }
    expect(await waitingAsks(h)).toBe(3);
  });

  it('a refused ask does not spend one of the asks per minute', async () => {
    const limited = await startHarness({ MODELS_DIR: modelsDir, EMBEDDED_RUNNER: 'false', ASKS_PER_MINUTE: '2' });
    try {
      // the limit counts per clock minute: keep the asks inside one
      if (Date.now() % 60_000 > 50_000) await new Promise((r) => setTimeout(r, 60_500 - (Date.now() % 60_000)));
      for (const line of ['/ask archive one', '/ask nope two', `/ask ${FAILED} three`])
        expect((await say(limited, line))[0]).toMatch(/^⚠️ /);
      expect(await quietly(limited, '/ask base four')).toEqual([]);
      expect(await quietly(limited, '/ask latest five')).toEqual([]);
      expect((await say(limited, '/ask latest six'))[0]).toMatch(
        /^⚠️ you have asked 2 times this minute \(ASKS_PER_MINUTE\)/,
      );
      expect(await waitingAsks(limited)).toBe(2);
    } finally {
      await limited.stop();
    }
  });

  it("more than ten usable models: the refusal (and /models info's) names the ten newest that succeeded", async () => {
    const extra = Array.from({ length: 11 }, (_, i) => `tiny-gpt-oss_quick_test_202502${String(i + 10)}_1200`);
    for (const name of extra) await folder(name, { status: 'succeeded', final_loss: '1.0000' });
    await folder('tiny-gpt-oss_quick_test_20250301_1200', { status: 'cancelled' }); // the newest of all: not named
    try {
      const ten = [...extra].reverse().slice(0, 10).join(', ');
      expect(await say(h, '/ask nope hi')).toEqual([`⚠️ no model 'nope'; known: latest, base, ${ten}`]);
      expect(await say(h, '/models info nope')).toEqual([`⚠️ no model 'nope'; try latest or one of ${ten}`]);
    } finally {
      for (const name of [...extra, 'tiny-gpt-oss_quick_test_20250301_1200'])
        await rm(join(modelsDir, name), { recursive: true });
    }
  });
});

describe('a reasoning effort mistyped as the first word of the prompt', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ MODELS_DIR: modelsDir, EMBEDDED_RUNNER: 'false', ASKS_PER_MINUTE: '100' });
  });
  afterAll(() => h?.stop());

  const lastAsk = async (h: Harness) => {
    const jobs = await h.app.bot.asks.queue.getJobs(['waiting', 'prioritized']);
    return jobs.sort((a, b) => Number(b.id) - Number(a.id))[0]!.data as {
      messages: { content: string }[];
      reasoningEffort: string;
    };
  };

  it('is answered as typed, and the caller is told privately, once, in one line', async () => {
    expect(await quietly(h, '/ask latest ultra hi')).toEqual([
      "ℹ️ 'ultra' is not a reasoning effort (low, medium, high): it was read as the start of your prompt",
    ]);
    expect(await lastAsk(h)).toMatchObject({ messages: [{ content: 'ultra hi' }], reasoningEffort: 'low' });
    expect(await quietly(h, '/ask latest Hihg why is the sky blue?')).toEqual([
      "ℹ️ 'Hihg' is not a reasoning effort (low, medium, high): it was read as the start of your prompt",
    ]);
  });

  it('says nothing for a real effort, prose, or a prompt of that one word', async () => {
    expect(await quietly(h, '/ask latest high why is the sky blue?')).toEqual([]);
    expect(await lastAsk(h)).toMatchObject({
      messages: [{ content: 'why is the sky blue?' }],
      reasoningEffort: 'high',
    });
    expect(await quietly(h, '/ask latest how are you?')).toEqual([]);
    expect(await quietly(h, '/ask latest ultra')).toEqual([]);
    expect(await quietly(h, '/ask latest effort=medium max of 3 and 5?')).toEqual([]); // an effort was given: max is prose
  });
});

describe('an ask while a training runs (INFERENCE_DURING_TRAINING=wait)', () => {
  let h: Harness;
  let connection: Redis;
  let worker: Worker;

  const beat = (name: string, backend: string, device: RunnerBeat['device'], gpuClass: string): RunnerBeat => ({
    name,
    instance: `test-${name}`,
    host: name.split('/')[0]!,
    gpuId: 0,
    gpuClass,
    backend,
    device,
    modelsId: null,
    job: { id: '1', profile: 'quick_test', step: 3, maxSteps: 30, requestedBy: 'ada' },
    waitingFor: null,
    startedAt: new Date().toISOString(),
    seenAt: new Date().toISOString(),
  });

  beforeAll(async () => {
    h = await startHarness({ MODELS_DIR: modelsDir, EMBEDDED_RUNNER: 'false', INFERENCE_DURING_TRAINING: 'wait' });
    // a runner stand-in that takes the training job and holds it
    const held = new Promise<void>(() => undefined);
    connection = connectRedis(h.app.redisUrl);
    worker = new Worker(TRAIN_QUEUE, () => held, { connection, prefix: h.app.bot.config.queuePrefix, concurrency: 1 });
  });
  afterAll(async () => {
    await worker?.close(true);
    if (connection) await closeRedis(connection);
    await h?.stop();
  });

  it("says which device the running job's runner uses: the CPU, the GPU, or the runner when none tells", async () => {
    h.type('/train quick_test');
    await expect.poll(() => h.app.bot.queue.queue.getActiveCount(), { timeout: 10_000 }).toBe(1);
    const { runners } = h.app.bot;
    const cpu = beat('cpubox', 'cpu', { kind: 'cpu', model: 'a test CPU', usedMiB: 1000, totalMiB: 8000 }, 'cpu');
    await runners.claim(cpu.name, () => cpu, 60_000);
    expect(await say(h, '/ask base hello')).toContain(
      '⏳ waiting for the CPU: training job 1 is running (INFERENCE_DURING_TRAINING=wait)',
    );
    await runners.leave(cpu.name, cpu.instance);
    const gpu = beat(
      'gpubox/gpu0',
      'cuda',
      { kind: 'cuda', model: 'NVIDIA H100 80GB HBM3', usedMiB: 1000, totalMiB: 81_000 },
      'h100',
    );
    await runners.claim(gpu.name, () => gpu, 60_000);
    expect(await say(h, '/ask base hello')).toContain(
      '⏳ waiting for the GPU: training job 1 is running (INFERENCE_DURING_TRAINING=wait)',
    );
    await runners.leave(gpu.name, gpu.instance);
    expect(await say(h, '/ask base hello')).toContain(
      '⏳ waiting for the runner: training job 1 is running (INFERENCE_DURING_TRAINING=wait)',
    );
  });
});
