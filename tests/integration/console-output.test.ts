/**
 * What the console prints on a pipe (a script, a log file) when a model's answer streams in and when a job is
 * cancelled twice. The bot runs on the real Redis and BullMQ; the runner is replaced by stand-in workers on the same
 * queues (EMBEDDED_RUNNER=false): one answers an ask with text a model could write (terminal escapes, a carriage
 * return, bidi overrides) in several streamed pieces, one holds a training job as a live trainer would.
 */
import { Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ASK_QUEUE, TRAIN_QUEUE, type AskResult } from '../../src/shared/jobs.ts';
import { closeRedis, connectRedis } from '../../src/shared/redis.ts';
import { startHarness, type Harness } from '../helpers/harness.ts';

/** An answer, as it streams, with what no terminal should receive: ESC sequences (clear screen, a title, colour), CR, SOH, BEL, RLO. */
const PIECES = [
  'Paris',
  '\x1b[2J\x1b]0;owned\x07 is',
  ' the \x1b[31mcapital',
  '\x1b[0m.\rFAKE',
  ' PROMPT $ \x01done\u202Egnp.exe',
];
/** C0 but tab and newline, DEL, C1, and the bidi overrides and isolates. */
const UNSAFE = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/;

let h: Harness;
let connection: Redis;
const workers: Worker[] = [];
const prefix = () => h.app.bot.config.queuePrefix;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  h = await startHarness({ EMBEDDED_RUNNER: 'false', ASKS_PER_MINUTE: '100' });
  connection = connectRedis(h.app.redisUrl);
});
afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.close(true)));
});
afterAll(async () => {
  if (connection) await closeRedis(connection);
  await h?.stop();
});

describe('an answer on a pipe', () => {
  it('is printed once, complete, under its header, with no control character from the model', async () => {
    workers.push(
      new Worker(
        ASK_QUEUE,
        async (job: Job): Promise<AskResult> => {
          let text = '';
          for (const piece of PIECES) {
            text += piece;
            await job.updateProgress({ text });
            await sleep(150); // slower than the console's edit interval: each piece would be an edit of its own
          }
          return {
            model: 'base',
            answer: text,
            reasoning: '',
            complete: true,
            tokens: 17,
            ttftS: 0.05,
            durationS: 0.8,
          };
        },
        { connection, prefix: prefix() },
      ),
    );
    const from = h.lines.length;
    h.type('/ask base What is the capital of France?');
    await h.waitFor(/^— base · 17 tokens · 0\.8 s \(first token 0\.05 s\)$/, 20_000, from);
    await sleep(300);
    const out = h.lines.slice(from);
    // the header once, then the answer whole (the CR a line break, the escapes gone), then its footer: nothing else
    expect(out).toEqual([
      '💬 base · ada asked: What is the capital of France?',
      'Paris[2J]0;owned is the [31mcapital[0m.',
      'FAKE PROMPT $ donegnp.exe',
      '— base · 17 tokens · 0.8 s (first token 0.05 s)',
    ]);
    for (const line of out) expect(line).not.toMatch(UNSAFE);
  });
});

describe('a second /train cancel of a job that is stopping', () => {
  it('says who cancelled it and that it is stopping, rather than repeating the first answer', async () => {
    let taken!: () => void;
    const held = new Promise<void>((r) => (taken = r));
    // a trainer stand-in that takes the job and holds it (a real one stops at its next step)
    workers.push(
      new Worker(TRAIN_QUEUE, () => (taken(), new Promise<void>(() => undefined)), {
        connection,
        prefix: prefix(),
        concurrency: 1,
      }),
    );
    const from = h.lines.length;
    h.type('/train quick_test');
    await held;
    const id = /^🧪 Training job (\d+):/.exec(await h.waitFor(/^🧪 Training job \d+:/, 10_000, from))![1];
    h.type(`/train cancel ${id}`);
    const first = await h.waitFor(/^🛑 stopping job/, 10_000, from);
    expect(first).toMatch(new RegExp(`^🛑 stopping job ${id}`));
    const after = h.lines.length;
    h.type(`/train cancel ${id}`);
    expect(await h.waitFor(/./, 10_000, after)).toMatch(
      new RegExp(`^⚠️ job ${id} is already stopping \\(ada cancelled it\\)`),
    );
  });
});

describe("the job card of a job queued while a dead runner's job is still active", () => {
  it('counts as running only the jobs a runner holds', async () => {
    const own = await startHarness({ EMBEDDED_RUNNER: 'false' }); // a queue of its own: no job of the tests above
    const ownConnection = connectRedis(own.app.redisUrl);
    try {
      let taken!: () => void;
      const held = new Promise<void>((r) => (taken = r));
      // a runner that takes a job and dies: its lock (1 s here) lapses, and no live runner puts the job back
      const dying = new Worker(TRAIN_QUEUE, () => (taken(), new Promise<void>(() => undefined)), {
        connection: ownConnection,
        prefix: own.app.bot.config.queuePrefix,
        lockDuration: 1_000,
        stalledInterval: 60_000,
      });
      own.type('/train quick_test');
      await held;
      await dying.close(true);
      await sleep(1_500);
      expect(await own.app.bot.queue.queue.getActiveCount()).toBe(1);
      const from = own.lines.length;
      own.type('/train quick_test');
      const card = await own.waitFor(/^🧪 Training job 2: quick_test/, 10_000, from);
      expect(own.lines[own.lines.indexOf(card, from) + 1]).toMatch(/^🕒 next up · \/train cancel 2 to stop it/);
    } finally {
      await closeRedis(ownConnection);
      await own.stop();
    }
  });
});
