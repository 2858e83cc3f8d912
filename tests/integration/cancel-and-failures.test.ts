/** Cancelling and failing runs: what the channel says, what is left on disk, and that no trainer process lingers. */
import { mkdirSync, readFileSync, readdirSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../src/shared/config.ts';
import { startHarness, type Harness } from '../helpers/harness.ts';
import { alive, commandLines } from '../helpers/processes.ts';

/** This test's trainers of job `id` (by its models folder: another suite on the machine has jobs of that id too). */
const trainersOfJob = (id: string, modelsDir: string) =>
  commandLines().filter(
    (l) => l.includes('train.py') && l.includes(`--models-dir=${modelsDir} `) && l.includes(`--job-id=${id} `),
  );

function modelsWithKeptLatest(dir: string): void {
  mkdirSync(join(dir, 'tiny-gpt-oss_quick_test_20250101_0000'));
  writeFileSync(
    join(dir, 'tiny-gpt-oss_quick_test_20250101_0000/training_info.txt'),
    'status: succeeded\nfinal_loss: 0.5\n',
  );
  symlinkSync('tiny-gpt-oss_quick_test_20250101_0000', join(dir, 'latest'));
}

let h: Harness | undefined;
afterEach(async () => {
  await h?.stop();
  h = undefined;
});

describe('cancel', () => {
  it('stops a running job’s Python process group and leaves latest where it was', async () => {
    h = await startHarness();
    modelsWithKeptLatest(h.modelsDir);
    h.type('/train standard');
    const first = await h.waitFor(/^⏳ job \d+ \[.*\] [1-9]\d*\/200/, 120_000);
    const id = /job (\d+)/.exec(first)![1]!;
    expect(trainersOfJob(id, h.modelsDir).length).toBeGreaterThan(0);
    // the bundled sample is smaller than standard asks for: the channel is told, once
    await h.waitFor(
      new RegExp(
        `^ℹ️ job ${id}: the dataset holds \\d+ conversations; standard asks for 1000: training on \\d+ \\(about \\d+\\.\\d epochs\\)$`,
      ),
    );
    expect(h.lines.filter((l) => l.startsWith(`ℹ️ job ${id}:`))).toHaveLength(1);

    h.type('/queue');
    await h.waitFor(new RegExp(`job ${id} \\[.*\\] \\d+/200 .* · standard for ada`));
    const from = h.lines.length;
    h.type(`/train status ${id}`);
    await h.waitFor(
      new RegExp(`^⏳ job ${id} \\[.*\\] \\d+/200 · loss \\d+\\.\\d+ \\S+ · .* · standard for ada$`),
      10_000,
      from,
    );
    h.type(`/train cancel ${id}`);
    await h.waitFor(new RegExp(`^🛑 stopping job ${id}…$`));
    await h.waitFor(new RegExp(`^🛑 job ${id} cancelled by ada at step \\d+$`), 30_000);

    expect(trainersOfJob(id, h.modelsDir)).toEqual([]);
    expect(readlinkSync(join(h.modelsDir, 'latest'))).toBe('tiny-gpt-oss_quick_test_20250101_0000');
    const folder = readdirSync(h.modelsDir).find((f) => f.startsWith('tiny-gpt-oss_standard_'))!;
    expect(readFileSync(join(h.modelsDir, folder, 'training_info.txt'), 'utf8')).toMatch(/^status: cancelled$/m);
    h.type(`/train status ${id}`);
    await h.waitFor(new RegExp(`^🛑 job ${id} cancelled by ada: standard for ada$`));
  });

  it('removes a waiting job at once, and /train status still tells who cancelled it', async () => {
    h = await startHarness();
    h.type('/train standard');
    h.type('/train quick_test');
    const card = await h.waitFor(/^🧪 Training job \d+: quick_test/);
    const id = /job (\d+)/.exec(card)![1]!;
    const from = h.lines.length;
    h.type(`/train cancel ${id}`);
    await h.waitFor(new RegExp(`^🛑 job ${id} cancelled before it started$`), 10_000, from); // the answer to ada
    await h.waitFor(new RegExp(`^🛑 job ${id} cancelled by ada before it started$`), 10_000, from); // the job's own message
    h.type(`/train status ${id}`);
    await h.waitFor(new RegExp(`job ${id} \\(quick_test\\) was cancelled by ada before it started`));
    h.type('/train cancel 1');
    // a runner had taken it: at the step it reached, or before its first one while the trainer was loading
    await h.waitFor(/^🛑 job 1 cancelled by ada (at step \d+|before its first step)$/, 30_000);
  });

  it('refuses to cancel a job that does not exist, or someone else’s', async () => {
    h = await startHarness({ EMBEDDED_RUNNER: 'false' }); // no runner: the jobs stay waiting
    h.type('/train cancel 999');
    await h.waitFor(/^⚠️ no training job '999'; \/queue lists the jobs$/);
    const job = await h.app.bot.queue.add({
      profile: 'quick_test',
      requestedBy: { id: 'linus', name: 'linus', platform: 'console' },
      origin: { platform: 'console', channelId: 'console' },
    });
    h.type(`/train cancel ${job.job.id}`);
    await h.waitFor(
      new RegExp(`^⚠️ job ${job.job.id} belongs to linus; only they \\(or ALLOW_CANCEL_ANY\\) can cancel it$`),
    );
  });

  it('lets someone in ALLOW_CANCEL_ANY cancel anyone’s job', async () => {
    h = await startHarness({ EMBEDDED_RUNNER: 'false', ALLOW_CANCEL_ANY: 'user:ada' });
    const { job } = await h.app.bot.queue.add({
      profile: 'quick_test',
      requestedBy: { id: 'linus', name: 'linus', platform: 'console' },
      origin: { platform: 'console', channelId: 'console' },
    });
    h.type(`/train cancel ${job.id}`);
    await h.waitFor(new RegExp(`^🛑 job ${job.id} cancelled before it started$`));
    expect(await h.app.bot.queue.queue.getJobCounts('waiting', 'prioritized')).toEqual({ waiting: 0, prioritized: 0 });
  });
});

describe('access and limits', () => {
  it('refuses /train to someone ALLOW_TRAIN leaves out, privately, and /help shows them only what they may run', async () => {
    h = await startHarness({ EMBEDDED_RUNNER: 'false', ALLOW_TRAIN: 'user:grace,role:trainers' });
    h.type('/train quick_test');
    await h.waitFor(/^⚠️ you may not run \/train quick_test here \(ALLOW_TRAIN\); ask whoever runs the bot$/);
    expect(await h.app.bot.queue.queue.getJobCounts('waiting', 'prioritized', 'active')).toEqual({
      waiting: 0,
      prioritized: 0,
      active: 0,
    });
    const from = h.lines.length;
    h.type('/help');
    await h.waitFor(/^\/train cancel <job>/, 10_000, from);
    const help = h.lines.slice(from).join('\n');
    expect(help).not.toContain('/train <profile>');
    expect(help).not.toContain('quick_test');
    expect(help).toContain('/train status [job]');
  });

  it('refuses /ask over the per-minute limit, and to someone ALLOW_ASK leaves out', async () => {
    h = await startHarness({ EMBEDDED_RUNNER: 'false', ASKS_PER_MINUTE: '2' });
    h.type('/ask base one');
    h.type('/ask base two');
    h.type('/ask base three');
    await h.waitFor(/^⚠️ you have asked 2 times this minute \(ASKS_PER_MINUTE\); try again in \d+ s$/);
    expect(await h.app.bot.asks.queue.getJobCounts('waiting')).toEqual({ waiting: 2 });
    await h.stop();
    h = await startHarness({ EMBEDDED_RUNNER: 'false', ALLOW_ASK: 'role:askers' });
    h.type('/ask base hello');
    await h.waitFor(/^⚠️ you may not run \/ask here \(ALLOW_ASK\); ask whoever runs the bot$/);
    expect(await h.app.bot.asks.queue.getJobCounts('waiting')).toEqual({ waiting: 0 });
  });

  it('refuses a training over the per-user limit and queues nothing more', async () => {
    h = await startHarness({ EMBEDDED_RUNNER: 'false', MAX_QUEUED_PER_USER: '1' });
    h.type('/train quick_test');
    h.type('/train standard');
    await h.waitFor(/^⚠️ you have 1 training waiting or running \(the limit is 1\); \/train status lists them$/);
    const counts = await h.app.bot.queue.queue.getJobCounts('waiting', 'prioritized');
    expect(counts.waiting! + counts.prioritized!).toBe(1);
  });
});

describe('a trainer that fails', () => {
  it('fails the job with the trainer’s own error line when the dataset is broken, and never moves latest', async () => {
    const dir = join(REPO_ROOT, '.cache');
    mkdirSync(dir, { recursive: true });
    const dataset = join(dir, 'broken-dataset.jsonl');
    writeFileSync(dataset, '{"messages": [{"role": "user", "content": "hi"}]}\n');
    h = await startHarness({ DATASET: dataset });
    modelsWithKeptLatest(h.modelsDir);
    h.type('/train quick_test');
    const line = await h.waitFor(/^❌ job \d+ failed: /, 120_000);
    expect(line).toMatch(
      /failed: ValueError: broken-dataset\.jsonl line 1: expected \{"messages": \[\.\.\.\]\} with an assistant turn$/,
    );
    expect(readlinkSync(join(h.modelsDir, 'latest'))).toBe('tiny-gpt-oss_quick_test_20250101_0000');
    const folder = readdirSync(h.modelsDir).find((f) => /_quick_test_\d{8}_\d{4}/.test(f) && !f.includes('20250101'))!;
    expect(readFileSync(join(h.modelsDir, folder, 'training_info.txt'), 'utf8')).toMatch(/^status: failed$/m);
  });

  // tests/fixtures/broken-trainer.sh stands in for the Python interpreter: the real trainer cannot be made to break.
  it('fails the job when the trainer prints free text on stdout, and stops its whole process group', async () => {
    h = await startHarness({ PYTHON: join(REPO_ROOT, 'tests/fixtures/broken-trainer.sh') });
    writeFileSync(join(h.modelsDir, '.broken-mode'), 'free-text');
    h.type('/train quick_test');
    const line = await h.waitFor(/^❌ job \d+ failed: /, 30_000);
    expect(line).toMatch(/failed: the trainer broke its protocol \(not JSON\): Loading checkpoint shards: 100%$/);
    const grandchild = Number(readFileSync(join(h.modelsDir, '.grandchild.pid'), 'utf8'));
    await expect.poll(() => alive(grandchild), { timeout: 10_000 }).toBe(false);
  });

  it('fails the job with the last line the trainer wrote to stderr when it exits non-zero', async () => {
    h = await startHarness({ PYTHON: join(REPO_ROOT, 'tests/fixtures/broken-trainer.sh') });
    writeFileSync(join(h.modelsDir, '.broken-mode'), 'crash');
    h.type('/train quick_test');
    const line = await h.waitFor(/^❌ job \d+ failed: /, 30_000);
    expect(line).toBe(
      '❌ job 1 failed: the trainer exited with code 1: RuntimeError: CUDA error: an illegal memory access was encountered',
    );
  });
});

describe('asks while a training runs (INFERENCE_DURING_TRAINING)', () => {
  it('refuse: an ask during training fails at once, saying why', async () => {
    h = await startHarness({ INFERENCE_DURING_TRAINING: 'refuse' });
    h.type('/train standard');
    await h.waitFor(/^⏳ job 1 \[.*\] [1-9]\d*\/200/, 120_000);
    h.type('/ask base hello');
    await h.waitFor(
      /^⚠️ the CPU is training job 1; asks are refused until it ends \(INFERENCE_DURING_TRAINING=refuse\)$/,
      30_000,
    );
    h.type('/train cancel 1');
    await h.waitFor(/^🛑 job 1 cancelled by ada/, 30_000);
  });

  it('wait: the ask says it waits, the chat model stays off the GPU during training, and answers after', async () => {
    h = await startHarness({ INFERENCE_DURING_TRAINING: 'wait' });
    h.type('/train standard');
    await h.waitFor(/^⏳ job 1 \[.*\] [1-9]\d*\/200/, 120_000);
    h.type('/ask base hello');
    await h.waitFor(/^⏳ waiting for the CPU: training job 1 is running \(INFERENCE_DURING_TRAINING=wait\)$/, 10_000); // the embedded runner trains on the CPU
    await new Promise((r) => setTimeout(r, 1_000));
    expect(h.app.runner!.inference.starts).toBe(0); // no inference worker while the trainer has the GPU
    h.type('/train cancel 1');
    await h.waitFor(/^🛑 job 1 cancelled by ada/, 30_000);
    await h.waitFor(/^— base · \d+ tokens/, 120_000);
    expect(h.app.runner!.inference.starts).toBe(1);
  });
});

describe('the inference worker', () => {
  it('a worker that died is started again by the next ask, which is answered', async () => {
    h = await startHarness();
    h.type('/ask base Count from 1 to 9.');
    await h.waitFor(/^— base · \d+ tokens/, 120_000);
    const first = h.app.runner!.inference.pid!;
    process.kill(first, 'SIGKILL'); // the worker dies (out of memory, a driver fault…)
    await expect.poll(() => h!.app.runner!.inference.pid, { timeout: 10_000 }).toBeUndefined();
    const from = h.lines.length;
    h.type('/ask base Count from 2 to 8.');
    await h.waitFor(/^— base · \d+ tokens/, 120_000, from);
    expect(h.app.runner!.inference.starts).toBe(2);
    expect(h.app.runner!.inference.pid).not.toBe(first);
  });
});
