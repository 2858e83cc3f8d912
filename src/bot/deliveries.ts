/**
 * Platform requests already taken. A platform can deliver one request twice (a gateway that resumes and replays
 * its events, a signed HTTP request sent again while its signature is fresh): the first delivery of a request id
 * claims it in Redis (SET NX EX, so every bot process sees the claim) and the others are ignored, unanswered.
 */
import type { Redis } from 'ioredis';
import { orUnavailable } from '../shared/errors.ts';
import { logger } from '../shared/log.ts';

const log = logger('deliveries');
/** Longer than any platform re-delivers a request for (Slack signatures are good for 5 minutes). */
export const DELIVERY_TTL_S = 600;
/** Discord wants its defer within 3 s: a Redis that does not answer must not eat that time. */
const CLAIM_DEADLINE_MS = 500;

export class Deliveries {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  /**
   * Whether this is the first delivery of request `id` on `platform`. When Redis does not answer in time it counts as
   * the first: a rare double is better than a lost command (which then says the queue is unavailable anyway).
   */
  async first(platform: string, id: string): Promise<boolean> {
    const key = `${this.prefix}:delivery:${platform}:${id.slice(0, 200)}`;
    try {
      if ((await orUnavailable(this.redis.set(key, '1', 'EX', DELIVERY_TTL_S, 'NX'), CLAIM_DEADLINE_MS)) === 'OK')
        return true;
    } catch (e) {
      log.debug(`could not claim ${platform} request ${id}, taking it: ${(e as Error).message}`);
      return true;
    }
    log.info(`${platform} request ${id} was delivered again; ignored`);
    return false;
  }
}
