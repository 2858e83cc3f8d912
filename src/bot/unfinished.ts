/**
 * Messages still waiting for their last edit, a job's or an ask's: the message id is stored with the job and the job's
 * id joins one Redis set per kind; the last edit takes it out. A bot process that starts finishes what the set still
 * holds (work that ended, or went on, while no bot process was up), reading only those jobs.
 */
import type { Job, Queue } from 'bullmq';
import type { z } from 'zod';
import type { Redis } from 'ioredis';
import type { MessageRef } from './surface.ts';
import { orUnavailable } from '../shared/errors.ts';
import { logger } from '../shared/log.ts';

const log = logger('unfinished');

export class UnfinishedMessages {
  private readonly key: string;

  constructor(
    private readonly redis: Redis,
    prefix: string,
    kind: 'job' | 'ask',
  ) {
    this.key = `${prefix}:unfinished-messages:${kind}`;
  }

  /**
   * Marks the job's message as not yet ended, then stores `ref` with the job (its origin's channel and message id).
   * In that order: a bot that dies between the two leaves a mark without an id (skipped, and dropped with its job),
   * never an id without its mark, which no restarted bot would look for.
   */
  async remember(job: Job, ref: MessageRef): Promise<void> {
    const origin = { ...job.data.origin, channelId: ref.channelId, messageId: ref.id };
    await orUnavailable(this.redis.sadd(this.key, job.id!).then(() => job.updateData({ ...job.data, origin }))).catch(
      (e) => log.debug(`${job.id}: message id not stored: ${(e as Error).message}`),
    );
  }

  /**
   * The unfinished messages of `platform`: each job fetched (together) and its data checked with `schema`; a job
   * that is gone (removed, trimmed) leaves the set. `skip`: ids already followed here.
   */
  async of<T extends { origin: { platform: string; channelId: string; messageId?: string } }>(
    queue: Queue,
    schema: z.ZodType<T>,
    platform: string,
    skip: { has(id: string): boolean },
  ): Promise<{ id: string; data: T; ref: MessageRef }[]> {
    const ids = (await orUnavailable(this.redis.smembers(this.key))).filter((id) => !skip.has(id));
    const jobs = await orUnavailable(Promise.all(ids.map((id) => queue.getJob(id))));
    const found: { id: string; data: T; ref: MessageRef }[] = [];
    for (const [i, id] of ids.entries()) {
      const data = schema.safeParse(jobs[i]?.data);
      if (!data.success) {
        await this.finished(id); // removed meanwhile: nothing left to show
        continue;
      }
      const { origin } = data.data;
      if (origin.platform === platform && origin.messageId)
        found.push({ id, data: data.data, ref: { channelId: origin.channelId, id: origin.messageId } });
    }
    return found;
  }

  /** The message got its last edit (or its job is gone): a bot that starts later leaves it alone. */
  async finished(jobId: string): Promise<void> {
    await this.redis.srem(this.key, jobId).catch(() => undefined);
  }
}
