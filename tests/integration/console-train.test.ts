/**
 * The spine, every layer real: the console adapter → BullMQ on a real Redis → the runner → train.py on the CPU with
 * the tiny gpt-oss → a model folder on disk → /models list.
 */
import { existsSync, readlinkSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChatStore } from '../../src/bot/conversations.ts';
import { closeRedis, connectRedis } from '../../src/shared/redis.ts';
import { startHarness, type Harness } from '../helpers/harness.ts';

const SEED_FILES = [
  'adapter_config.json',
  'adapter_model.safetensors',
  'tokenizer_config.json',
  'tokenizer.json',
  'training_info.txt',
];

describe('/train quick_test from the console', () => {
  let h: Harness;
  let modelName: string;

  beforeAll(async () => {
    h = await startHarness();
    h.type('/train quick_test');
    const done = await h.waitFor(/^✅ job \d+ done/, 120_000);
    modelName = /model (\S+) \(now latest\)/.exec(done)![1]!;
  });
  afterAll(() => h?.stop());

  it('answers at once with a job card: id, profile, steps, dataset size, queue position', () => {
    const card = h.lines.findIndex((l) =>
      /^🧪 Training job \d+: quick_test · 30 steps · 100 examples · for ada$/.test(l),
    );
    expect(card).toBeGreaterThanOrEqual(0);
    expect(h.lines[card + 1]).toMatch(
      /^(⏳ starting now|🕒 next up|🕒 position \d+ in the queue.*) · \/train cancel \d+ to stop it$/,
    );
  });

  it('shows several progress updates with a bar, step/max, the loss with its band, elapsed time and ETA', () => {
    const updates = h.lines.filter((l) =>
      /^⏳ job \d+ \[[█░]{20}\] \d+\/30 · loss \d+\.\d+ (⚠️|🟡|🎯|✅|🔴) · \d+:\d\d elapsed/.test(l),
    );
    expect(updates.length).toBeGreaterThanOrEqual(3);
    expect(updates.some((l) => / · ETA \d+:\d\d/.test(l))).toBe(true);
    const steps = updates.map((l) => Number(/(\d+)\/30/.exec(l)![1]));
    expect([...steps].sort((a, b) => a - b)).toEqual(steps);
  });

  it('ends with the final loss and the held-out eval loss, each with its band, the duration and the new folder', () => {
    expect(h.lines.at(-1)).toMatch(
      /^✅ job \d+ done · final loss \d+\.\d{3} (⚠️|🟡|🎯|✅|🔴) \w+ · eval loss \d+\.\d{3} (⚠️|🟡|🎯|✅|🔴) \w+ · \d+:\d\d · model tiny-gpt-oss_quick_test_\d{8}_\d{4}(-\d+)? \(now latest\)$/,
    );
  });

  it('writes every file of the seed’s list and points latest at the folder', () => {
    const folder = join(h.modelsDir, modelName);
    for (const f of SEED_FILES) expect(existsSync(join(folder, f)), f).toBe(true);
    expect(readdirSync(folder).some((f) => /^checkpoint-\d+$/.test(f))).toBe(true);
    expect(readlinkSync(join(h.modelsDir, 'latest'))).toBe(modelName);
    const info = readFileSync(join(folder, 'training_info.txt'), 'utf8');
    expect(info).toMatch(/^status: succeeded$/m);
    expect(info).toMatch(/^requested_by: ada \(console\)$/m);
  });

  it('/models list shows the model newest first, with profile, time, final and eval loss with their bands, rank and latest', async () => {
    const from = h.lines.length;
    h.type('/models list');
    await h.waitFor(/^Models \(newest first, 1\):$/, 10_000, from);
    const row = await h.waitFor(
      new RegExp(
        `^→ ${modelName} · quick_test · \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d · loss \\d+\\.\\d{3} \\S+ \\w+ · eval \\d+\\.\\d{3} \\S+ · r=8 · latest$`,
      ),
      10_000,
      from,
    );
    expect(row).toBeTruthy();
  });

  it('/models info shows every fact of a model and its size; a path or an unknown name is refused', async () => {
    const from = h.lines.length;
    h.type('/models info latest');
    await h.waitFor(new RegExp(`^${modelName} \\(latest\\) · \\d+ KB on disk$`), 10_000, from);
    await h.waitFor(/^quality: 🔴 Underfitted$|^quality: \S+ \w+$/, 10_000, from);
    await h.waitFor(/^adapted_modules: q_proj, k_proj, v_proj, o_proj, gate_up_proj, down_proj$/, 10_000, from);
    h.type('/models info ../../etc/passwd');
    await h.waitFor(/^⚠️ a model is named by its folder name \(or latest\), not a path$/, 10_000, from);
    h.type('/models info nope');
    await h.waitFor(new RegExp(`^⚠️ no model 'nope'; try latest or one of ${modelName}$`), 10_000, from);
  });

  it('/ask streams an answer from the new adapter, from the base model, and refuses bad names', async () => {
    const from = h.lines.length;
    h.type('/ask latest What is the capital of France?');
    await h.waitFor(/^💬 latest · ada asked: What is the capital of France\?$/, 10_000, from);
    const footer = await h.waitFor(
      new RegExp(`^— ${modelName} · \\d+ tokens · \\d+\\.\\d s \\(first token \\d+\\.\\d\\d s\\)`),
      120_000,
      from,
    );
    expect(footer).toBeTruthy();
    h.type('/ask base What is the capital of France?');
    await h.waitFor(/^— base · \d+ tokens/, 60_000, from);
    h.type('/ask ../../etc hello');
    await h.waitFor(/^⚠️ a model is named by its folder name \(or latest, or base\), not a path$/, 10_000, from);
    h.type('/ask nope hello');
    await h.waitFor(/^⚠️ no model 'nope'; known: latest, base, tiny-gpt-oss_quick_test_/, 60_000, from);
    expect(h.app.runner!.inference.starts).toBe(1); // one resident worker answered all of them
  });

  it('/chat holds a conversation: every line a turn, the history in Redis', async () => {
    const from = h.lines.length;
    h.type('/chat latest');
    await h.waitFor(
      /^🧵 chatting with latest: type a message \(no leading \/\) for each turn; \/chat again starts over$/,
      10_000,
      from,
    );
    h.type('Say hello to Ada.');
    await h.waitFor(/^🧵 latest · ada$/, 10_000, from);
    await h.waitFor(new RegExp(`^— ${modelName} · \\d+ tokens`), 60_000, from);
    const afterFirst = h.lines.length;
    h.type('And to Grace?');
    await h.waitFor(new RegExp(`^— ${modelName} · \\d+ tokens`), 60_000, afterFirst);
    // the conversation is in Redis, not in this process: another store on another connection reads it
    const other = connectRedis(h.app.redisUrl);
    const conversation = await new ChatStore(other, h.app.bot.config.queuePrefix).get('console', 'console');
    await closeRedis(other);
    expect(conversation?.model).toBe('latest');
    expect(conversation?.turns.filter((t) => t.role === 'user').map((t) => t.content)).toEqual(
      ['Say hello to Ada.', 'And to Grace?'].slice(0, conversation!.turns.length / 2),
    );
    expect(conversation!.turns.length).toBeGreaterThanOrEqual(2);
  });

  it('refuses bad input with one line and queues nothing', async () => {
    const from = h.lines.length;
    const before = await h.app.bot.queue.queue.getJobCounts();
    h.type('/train huge');
    h.type('/train standard r=0');
    h.type('/train standard scheduler=cosine and more');
    h.type('/trian quick_test');
    await h.waitFor(/unknown command \/trian; \/help lists the commands/, 10_000, from);
    const answers = h.lines.slice(from);
    expect(answers).toEqual([
      "⚠️ unknown profile 'huge'; choose one of quick_test, standard, full, max_quality, conservative (or status, cancel)",
      '⚠️ r must be a whole number from 1 to 256',
      "⚠️ unexpected 'and'; usage: /train standard [r] [scheduler] [host=…] [gpu=…]",
      'unknown command /trian; /help lists the commands',
    ]);
    expect(await h.app.bot.queue.queue.getJobCounts()).toEqual(before);
  });

  it('/help lists every command', async () => {
    const from = h.lines.length;
    h.type('/help');
    await h.waitFor(/^\/train cancel <job>/, 10_000, from);
    const help = h.lines.slice(from).join('\n');
    for (const usage of [
      '/train <profile> [r=…] [scheduler=…]',
      '/train status [job]',
      '/queue',
      '/models list',
      '/help',
    ])
      expect(help).toContain(usage);
  });
});
