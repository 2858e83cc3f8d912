/**
 * 400 commands from 100 users at the same moment, through both platforms' real libraries (discord.js on the gateway
 * double, Bolt in Socket Mode on the Slack double), the real queue on the real Redis, no runner: nothing is lost or
 * duplicated, everything is answered in time and with the right kind of answer (tests/helpers/load.ts).
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  cancelAll,
  MAX_QUEUED,
  PLATFORM_DEADLINE_MS,
  runLoad,
  startLoadStack,
  type LoadResult,
  type LoadStack,
} from '../helpers/load.ts';

const USERS = 100;

describe('load through Discord and Slack at once', () => {
  let stack: LoadStack;
  let result: LoadResult;

  beforeAll(async () => {
    stack = await startLoadStack(inject('redisUrl'), `load${process.pid}`);
  });
  afterAll(async () => {
    await stack?.bot.queue.queue.obliterate({ force: true }).catch(() => undefined);
    await stack?.stop();
  });

  it(`${USERS} users, 400 commands at once: every one deferred / acked within 3 s and answered rightly, no job lost or duplicated`, async () => {
    result = await runLoad(stack, USERS, 45_000);
    expect(result.problems).toEqual([]);
    // 40 cancellers (2 /train, /queue or /help, /train cancel), 20 bursters (5 /train, /train status), 40 browsers
    // (/train, /models list, /train status)
    expect(result.commands).toBe(40 * 4 + 20 * 6 + 40 * 3);
    expect(result.sent.filter((s) => s.user.platform === 'discord')).toHaveLength(result.commands / 2);
    expect(result.accepted).toBe(40 * 2 + 20 * MAX_QUEUED + 40);
    expect(result.refused).toBe(20 * (5 - MAX_QUEUED));
    expect(result.cancelled).toBe(40);
    expect(result.queued.size).toBe(result.accepted - result.cancelled);
    const queued = await stack.bot.queue.queue.getJobCounts('waiting', 'prioritized');
    expect(queued.waiting! + queued.prioritized!).toBe(result.accepted - result.cancelled);
    expect(Math.max(...result.deferMs.discord, ...result.deferMs.slack)).toBeLessThan(PLATFORM_DEADLINE_MS);
  });

  it('every job cancelled by its owner, through their platform: the queue is empty', async () => {
    expect(result?.queued.size).toBeGreaterThan(0);
    expect(await cancelAll(stack, result.queued, 45_000)).toEqual([]);
  });
});
