/**
 * MAX_QUEUED_PER_USER under concurrency: many /train from one person at the same moment, through two bots (two Redis
 * connections, as two bot processes have) on the real Redis and BullMQ. No runner: the jobs stay queued.
 */
import { Worker } from 'bullmq';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createBot, type Bot } from '../../src/bot/bot.ts';
import type { CommandContext } from '../../src/bot/command-kit.ts';
import type { ChatSurface } from '../../src/bot/surface.ts';
import { loadConfig } from '../../src/shared/config.ts';
import { TRAIN_QUEUE } from '../../src/shared/jobs.ts';
import { closeRedis, connectRedis } from '../../src/shared/redis.ts';
import type { Redis } from 'ioredis';

const MAX = 3;
const PER_BOT = 20;
let counter = 0;

interface Answers {
  /** Public replies (a queued job's card). */
  replies: string[];
  /** Private replies (refusals, cancels). */
  privately: string[];
}

/** A surface that posts nowhere, and a caller; records what each command answered. */
function context(bot: Bot, user: { id: string; name: string; platform: string }, answers: Answers): CommandContext {
  let n = 0;
  const surface: ChatSurface = {
    platform: user.platform,
    editIntervalMs: 1_000,
    minEditIntervalMs: 1_000,
    post: async (channelId) => ({ channelId, id: `m${++n}` }),
    edit: async () => undefined,
  };
  return {
    user: { ...user, roles: [] },
    channelId: 'C1',
    surface,
    bot,
    reply: async (text) => (answers.replies.push(text), { channelId: 'C1', id: `m${++n}` }),
    replyPrivate: async (text) => void answers.privately.push(text),
  };
}

describe('the per-user limit of /train', () => {
  const connections: Redis[] = [];
  const bots: Bot[] = [];
  let prefix: string;

  beforeAll(async () => {
    prefix = `limit${process.pid}x${++counter}`;
    const config = loadConfig({
      REDIS_URL: inject('redisUrl'),
      QUEUE_PREFIX: prefix,
      MAX_QUEUED_PER_USER: String(MAX),
    });
    for (let i = 0; i < 2; i++) {
      const connection = connectRedis(config.redisUrl!);
      connections.push(connection);
      bots.push(await createBot(config, connection));
    }
  });
  afterAll(async () => {
    await bots[0]?.queue.queue.obliterate({ force: true });
    for (const bot of bots) await bot.close();
    for (const c of connections) await closeRedis(c);
  });

  const jobsOf = async (id: string, platform: string) =>
    (await bots[0]!.queue.queue.getJobs(['waiting', 'active', 'prioritized', 'delayed'])).filter(
      (j) => j.data.requestedBy.id === id && j.data.requestedBy.platform === platform,
    );

  it(`holds at ${MAX} when one person sends ${2 * PER_BOT} /train at once through two bot processes`, async () => {
    const ada = { id: 'U0ADA', name: 'ada', platform: 'slack' };
    const answers: Answers = { replies: [], privately: [] };
    await Promise.all(
      Array.from({ length: 2 * PER_BOT }, (_, i) => {
        const bot = bots[i % 2]!;
        return bot.commands.dispatchText('train', 'quick_test', context(bot, ada, answers));
      }),
    );
    const jobs = await jobsOf(ada.id, ada.platform);
    expect(jobs).toHaveLength(MAX);
    expect(answers.replies).toHaveLength(MAX);
    expect(answers.replies.map((t) => /^🧪 Training job \*\*(\d+)\*\*/.exec(t)?.[1]).sort()).toEqual(
      jobs.map((j) => j.id).sort(),
    );
    expect(answers.privately).toHaveLength(2 * PER_BOT - MAX);
    for (const text of answers.privately) {
      expect(text).toBe(
        `⚠️ you have ${MAX} trainings waiting or running (the limit is ${MAX}); /train status lists them`,
      );
    }
    // the lock is gone once all is answered
    expect(await connections[0]!.keys(`${prefix}:train:user-lock:*`)).toEqual([]);
  });

  it('counts each person alone: another user, and the same id on another platform, are not held up by the first', async () => {
    const answers: Answers = { replies: [], privately: [] };
    const eve = { id: 'U0EVE', name: 'eve', platform: 'slack' };
    const ada = { id: 'U0ADA', name: 'ada', platform: 'discord' }; // the same id as Slack's ada would be another person
    await Promise.all(
      [eve, ada].flatMap((user) =>
        Array.from({ length: 8 }, (_, i) =>
          bots[i % 2]!.commands.dispatchText('train', 'quick_test', context(bots[i % 2]!, user, answers)),
        ),
      ),
    );
    expect(await jobsOf(eve.id, eve.platform)).toHaveLength(MAX);
    expect(await jobsOf(ada.id, ada.platform)).toHaveLength(MAX);
    expect(answers.replies).toHaveLength(2 * MAX);
    expect(answers.privately).toHaveLength(16 - 2 * MAX);
  });

  it('frees a place when a job is cancelled', async () => {
    const ada = { id: 'U0ADA', name: 'ada', platform: 'slack' };
    const [first] = await jobsOf(ada.id, ada.platform);
    const answers: Answers = { replies: [], privately: [] };
    await bots[1]!.commands.dispatchText('train', `cancel ${first!.id}`, context(bots[1]!, ada, answers));
    expect(answers.privately).toEqual([`🛑 job ${first!.id} cancelled before it started`]);
    answers.privately.length = 0;
    await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        bots[i % 2]!.commands.dispatchText('train', 'quick_test', context(bots[i % 2]!, ada, answers)),
      ),
    );
    expect(answers.replies).toHaveLength(1);
    expect(answers.privately).toHaveLength(5);
    expect(await jobsOf(ada.id, ada.platform)).toHaveLength(MAX);
  });

  it('waits for a lock another process holds, and never releases a lock it does not hold', async () => {
    const mia = { id: 'U0MIA', name: 'mia', platform: 'slack' };
    const key = `${prefix}:train:user-lock:slack:U0MIA`;
    // another bot process holds mia's lock for 600 ms (or died holding it, and it expires)
    await connections[0]!.set(key, 'someone-else', 'PX', 600);
    const answers: Answers = { replies: [], privately: [] };
    const t0 = performance.now();
    await bots[1]!.commands.dispatchText('train', 'quick_test', context(bots[1]!, mia, answers));
    expect(performance.now() - t0).toBeGreaterThanOrEqual(500);
    expect(answers.replies).toHaveLength(1);
    // a critical section that outlives its lock (a stalled Redis) must not delete the next holder's lock
    await bots[0]!.queue.withUserLock(mia, async () => {
      await connections[0]!.set(key, 'next-holder', 'PX', 5_000); // as if ours expired and another process took it
    });
    expect(await connections[0]!.get(key)).toBe('next-holder');
    await connections[0]!.del(key);
  });
});

describe('what counts toward the limit', () => {
  let connection: Redis;
  let bot: Bot;
  let worker: Worker;
  let workerConnection: Redis;
  let release!: () => void;

  beforeAll(async () => {
    const config = loadConfig({
      REDIS_URL: inject('redisUrl'),
      QUEUE_PREFIX: `limit${process.pid}x${++counter}`,
      MAX_QUEUED_PER_USER: String(MAX),
    });
    connection = connectRedis(config.redisUrl!);
    bot = await createBot(config, connection);
    // a runner stand-in that holds the first job it takes until told, then completes it
    const done = new Promise<void>((r) => (release = r));
    workerConnection = connectRedis(config.redisUrl!);
    worker = new Worker(TRAIN_QUEUE, () => done, {
      connection: workerConnection,
      prefix: config.queuePrefix,
      concurrency: 1,
    });
  });
  afterAll(async () => {
    await worker?.close(true);
    await closeRedis(workerConnection);
    await bot?.queue.queue.obliterate({ force: true });
    await bot?.close();
    await closeRedis(connection);
  });

  it('a running job counts, a finished one does not; /train status shows both states', async () => {
    const rob = { id: 'U0ROB', name: 'rob', platform: 'slack' };
    const answers: Answers = { replies: [], privately: [] };
    const ctx = () => context(bot, rob, answers);
    await Promise.all(Array.from({ length: MAX + 2 }, () => bot.commands.dispatchText('train', 'quick_test', ctx())));
    expect(answers.replies).toHaveLength(MAX);
    await expect.poll(() => bot.queue.queue.getActiveCount(), { timeout: 10_000 }).toBe(1);
    const mine = await bot.queue.pendingOf(rob);
    expect(mine.map((v) => v.state)).toEqual(['active', 'waiting', 'waiting']);
    answers.privately.length = 0;
    await bot.commands.dispatchText('train', 'quick_test', ctx());
    expect(answers.privately).toEqual([
      `⚠️ you have ${MAX} trainings waiting or running (the limit is ${MAX}); /train status lists them`,
    ]);
    await bot.commands.dispatchText('train', 'status', ctx());
    expect(answers.privately[1]!.split('\n')).toEqual([
      expect.stringMatching(new RegExp(`^⏳ job ${mine[0]!.id}: starting… · quick_test for rob$`)),
      `🕒 job ${mine[1]!.id} waiting: quick_test for rob`,
      `🕒 job ${mine[2]!.id} waiting: quick_test for rob`,
    ]);
    // the running one ends (the worker, paused, takes no other): two are pending, and there is room for one more
    await worker.pause(true);
    release();
    await expect.poll(() => bot.queue.queue.getCompletedCount(), { timeout: 10_000 }).toBe(1);
    expect(await bot.queue.pendingOf(rob)).toHaveLength(MAX - 1);
    await Promise.all(Array.from({ length: 3 }, () => bot.commands.dispatchText('train', 'quick_test', ctx())));
    expect(answers.replies).toHaveLength(MAX + 1);
    expect(await bot.queue.pendingOf(rob)).toHaveLength(MAX);
    expect(await bot.queue.pendingOf({ id: 'U0ROB', platform: 'discord' })).toEqual([]);
  });
});
