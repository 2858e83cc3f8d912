/** The bot's side of the training queue: add, look up, list and cancel jobs. Redis is the only state. */
import { type Job, Queue, UnrecoverableError } from 'bullmq';
import { RELEASE_IF_HOLDER } from '../shared/redis.ts';
import type { Redis } from 'ioredis';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  InvalidInput,
  JobNotFound,
  orUnavailable,
  QueueUnavailable,
  QUEUE_DEADLINE_MS,
  UserError,
} from '../shared/errors.ts';
import {
  CANCEL_FLAG_TTL_S,
  cancelledLine,
  keys,
  PRIORITY_ANY,
  readCancelFlag,
  TRAIN_QUEUE,
  TrainJobData,
  TrainProgress,
  TrainResult,
  type CancelFlag,
} from '../shared/jobs.ts';

export type JobState = 'waiting' | 'active' | 'completed' | 'failed' | 'cancelled' | 'unknown';

export interface JobView {
  id: string;
  data: TrainJobData;
  state: JobState;
  progress: TrainProgress | null;
  result: TrainResult | null;
  failedReason: string | null;
  addedAt: Date;
  cancelledBy: string | null;
}

/**
 * The most a per-user lock lives (ms): far longer than the count and the add it guards take, even at their Redis
 * deadlines; a bot that dies holding one delays that user's next /train by this much at most.
 */
export const USER_LOCK_TTL_MS = 10_000;
/** How long the bot holds a cancelled job's lock while it ends a job no runner holds. */
const CANCEL_LOCK_MS = 10_000;

/**
 * One requester's waiting and running jobs, as id, state pairs, filtered inside Redis: a /train's count then costs
 * the bot one short reply instead of every queued job's hash. It reads BullMQ's layout (a list or sorted set of ids
 * per state, each job a hash whose `data` is JSON), as BullMQ's own getters do.
 */
const JOBS_OF = `
local found = {}
local function check(id, state)
  local raw = redis.call('hget', ARGV[1] .. id, 'data')
  if not raw then return end
  local ok, data = pcall(cjson.decode, raw)
  local by = ok and type(data) == 'table' and data.requestedBy
  if type(by) == 'table' and by.id == ARGV[2] and by.platform == ARGV[3] then
    found[#found + 1] = id
    found[#found + 1] = state
  end
end
for _, id in ipairs(redis.call('lrange', KEYS[1], 0, -1)) do check(id, 'active') end
for _, id in ipairs(redis.call('lrange', KEYS[2], 0, -1)) do check(id, 'waiting') end
for _, id in ipairs(redis.call('zrange', KEYS[3], 0, -1)) do check(id, 'waiting') end
for _, id in ipairs(redis.call('zrange', KEYS[4], 0, -1)) do check(id, 'waiting') end
return found`;

export class TrainQueue {
  readonly queue: Queue;

  constructor(
    private readonly redis: Redis,
    readonly prefix: string,
    /** How long a command waits on Redis before it answers "queue unavailable" (ms). */
    private readonly timeoutMs = QUEUE_DEADLINE_MS,
  ) {
    this.queue = new Queue(TRAIN_QUEUE, { connection: redis, prefix });
  }

  /** Queues a job; `position` is 1 for the next to start, 0 if a runner took it already. */
  async add(data: TrainJobData): Promise<{ job: Job; position: number; running: number }> {
    const job = await this.guard(() =>
      this.queue.add(data.profile, TrainJobData.parse(data), {
        // Every job queues in order; one that asked for a host or GPU class gets PRIORITY_TARGETED once a runner it
        // does not fit has handed it back from the head of the queue (gpu-runner/runner.ts).
        priority: PRIORITY_ANY,
        // Another try only when the runner went away (shutdown, lost host); a trainer's own failure is final.
        attempts: 3,
        backoff: { type: 'fixed', delay: 5_000 },
        removeOnComplete: { count: 500 },
        removeOnFail: { count: 500 },
      }),
    );
    // ids only, in the order runners take them (BullMQ's plain wait list first, then by priority)
    const [state, waiting, prioritized, active] = await this.guard(() =>
      Promise.all([
        job.getState(),
        this.queue.getRanges(['waiting'], 0, -1),
        this.queue.getRanges(['prioritized'], 0, -1),
        this.heldCount(),
      ]),
    );
    if (state === 'active') return { job, position: 0, running: active - 1 };
    const rank = prioritized.indexOf(job.id!);
    const ahead = waiting.length + (rank >= 0 ? rank : prioritized.length);
    return { job, position: ahead + 1, running: active };
  }

  /**
   * Running jobs that a runner holds now (their lock is there). A job whose runner died stays active, without its
   * lock, until a live runner's stalled check puts it back: nothing runs it meanwhile.
   */
  private async heldCount(): Promise<number> {
    const ids = await this.queue.getRanges(['active'], 0, -1);
    return ids.length ? this.redis.exists(...ids.map((id) => `${this.queue.toKey(id)}:lock`)) : 0;
  }

  /**
   * Runs `critical` holding a short lock for one user in Redis. A check-then-add (the per-user limit of /train) is
   * only right if no other add for the same user comes between the check and the add, and bot processes share
   * nothing but Redis: so the lock is there (SET NX PX with a random token, released by compare-and-delete), and a
   * second /train of the same person waits for the first to be counted and added. Other users never wait.
   */
  async withUserLock<T>(user: { id: string; platform: string }, critical: () => Promise<T>): Promise<T> {
    const key = `${this.prefix}:train:user-lock:${user.platform}:${user.id}`;
    const token = randomBytes(8).toString('hex');
    // long enough for a lock left by a dead process to expire, so a retry then gets through
    const giveUpAt = Date.now() + USER_LOCK_TTL_MS + this.timeoutMs;
    for (let pause = 5; ; pause = Math.min(pause * 2, 100)) {
      if ((await this.guard(() => this.redis.set(key, token, 'PX', USER_LOCK_TTL_MS, 'NX'))) === 'OK') break;
      if (Date.now() > giveUpAt)
        throw new UserError('another /train of yours is still being queued; try again in a moment');
      await sleep(pause * (0.5 + Math.random()));
    }
    try {
      return await critical();
    } finally {
      // if this fails, the lock expires on its own
      await this.guard(() => this.redis.eval(RELEASE_IF_HOLDER, 1, key, token)).catch(() => undefined);
    }
  }

  async view(id: string): Promise<JobView> {
    const job = await this.guard(() => this.queue.getJob(id));
    if (!job) {
      const flag = await this.cancelFlag(id);
      if (!flag) throw new JobNotFound(id);
      throw new UserError(`job ${id} (${flag.profile}) was ${cancelledLine(flag)}`);
    }
    return this.toView(job);
  }

  /** Jobs waiting or running, oldest first. */
  async pending(): Promise<JobView[]> {
    // one read of the running jobs' ids gives every job's state, instead of a state lookup (a script) per job
    const [jobs, active] = await this.guard(() =>
      Promise.all([
        this.queue.getJobs(['active', 'waiting', 'prioritized', 'delayed']),
        this.queue.getRanges(['active'], 0, -1),
      ]),
    );
    const running = new Set(active);
    const views = jobs.map((j) => viewOf(j, running.has(j.id!) ? 'active' : 'waiting', null));
    return views.sort(runningFirstThenOldest);
  }

  /** One person's jobs waiting or running (the same id on the same platform), oldest first. */
  async pendingOf(user: { id: string; platform: string }): Promise<JobView[]> {
    const k = this.queue.keys;
    const found = (await this.guard(() =>
      this.redis.eval(JOBS_OF, 4, k.active!, k.wait!, k.prioritized!, k.delayed!, k['']!, user.id, user.platform),
    )) as string[];
    const pairs = Array.from({ length: found.length / 2 }, (_, i) => ({
      id: found[2 * i]!,
      state: found[2 * i + 1] as JobState,
    }));
    const jobs = await this.guard(() => Promise.all(pairs.map((p) => this.queue.getJob(p.id))));
    const views = pairs.flatMap((p, i) => (jobs[i] ? [viewOf(jobs[i], p.state, null)] : [])); // gone meanwhile: not pending
    return views.sort(runningFirstThenOldest);
  }

  /**
   * Cancel a job in any state. A waiting job is removed at once; a running one is signalled, and the runner that holds
   * it stops its trainer. One that no runner holds any more (its runner died and the lock lapsed) ends here at once.
   * The flag is set first, so a runner that takes the job in between still sees it. `ended`: the job had run, and is
   * now failed as cancelled without a runner (its folder is the caller's to mark).
   */
  async cancel(id: string, by: string): Promise<{ how: 'removed' | 'signalled' | 'ended'; flag: CancelFlag }> {
    const job = await this.guard(() => this.queue.getJob(id));
    if (!job) throw new JobNotFound(id);
    const state = await job.getState();
    if (state === 'completed' || state === 'failed') throw new InvalidInput(`job ${id} already ${state}`);
    const progress = TrainProgress.safeParse(job.progress);
    const flag: CancelFlag = {
      by,
      at: new Date().toISOString(),
      profile: String(job.data.profile),
      step: progress.success ? progress.data.step : 0,
    };
    await this.guard(() =>
      this.redis.set(keys.cancelFlag(this.prefix, id), JSON.stringify(flag), 'EX', CANCEL_FLAG_TTL_S),
    );
    if (state !== 'active') {
      try {
        await job.remove();
        return { how: 'removed', flag };
      } catch {
        // taken by a runner meanwhile: signal it like any running job
      }
    }
    if (await this.endUnheld(job, flag)) return { how: 'ended', flag };
    await this.guard(() => this.redis.publish(keys.cancelChannel(this.prefix), id));
    return { how: 'signalled', flag };
  }

  /**
   * After a cancel was signalled: if no runner stops the job within `withinMs` (its runner died; the lock lapses in
   * JOB_LOCK_MS), end it here once nothing holds it. True when it was ended here.
   */
  async settleCancel(id: string, flag: CancelFlag, withinMs: number): Promise<boolean> {
    const giveUpAt = Date.now() + withinMs;
    while (Date.now() < giveUpAt) {
      await sleep(1_000);
      const job = await this.guard(() => this.queue.getJob(id)).catch(() => undefined);
      if (job === null) return false; // removed: a runner or another bot ended it
      if (!job) continue; // Redis away for a moment
      const state = await job.getState().catch(() => 'unknown');
      if (state === 'completed' || state === 'failed') return false;
      if (await this.endUnheld(job, flag).catch(() => false)) return true;
    }
    return false;
  }

  /**
   * A cancelled job that no runner holds: fails it as cancelled, no retry. A job whose runner died stays active until
   * a stalled check (any runner's) puts it back; with none alive it would show as running forever. Taking its lock
   * (free once the dead runner's lapsed) makes sure no runner has it meanwhile. False: a runner holds it.
   */
  async endUnheld(job: Job, flag: CancelFlag): Promise<boolean> {
    const token = `cancel-${randomBytes(8).toString('hex')}`;
    const lock = `${this.queue.toKey(job.id!)}:lock`;
    if ((await this.guard(() => this.redis.set(lock, token, 'PX', CANCEL_LOCK_MS, 'NX'))) !== 'OK') return false;
    const state = await this.guard(() => job.getState());
    if (state !== 'active') {
      // waiting again (a stalled check put it back): removed, as a waiting job's cancel does; ended meanwhile: its
      // end stands. A runner that took it in between keeps it (remove refuses a locked job): the signal stops it.
      await this.guard(() => this.redis.eval(RELEASE_IF_HOLDER, 1, lock, token));
      if (state === 'completed' || state === 'failed') return false;
      return job.remove().then(
        () => true,
        () => false,
      );
    }
    // a runner's pickup writes its own lock over ours: then the move is refused, and the signal stops that runner
    return job.moveToFailed(new UnrecoverableError(cancelledLine(flag, true)), token, false).then(
      () => true,
      () => false,
    );
  }

  async cancelFlag(id: string): Promise<CancelFlag | null> {
    return this.guard(() => readCancelFlag(this.redis, this.prefix, id));
  }

  async close(): Promise<void> {
    await this.queue.close();
  }

  private async toView(job: Job): Promise<JobView> {
    const raw = await job.getState();
    const flag = raw === 'failed' ? await this.cancelFlag(job.id!) : null;
    const state: JobState = flag
      ? 'cancelled'
      : raw === 'active' || raw === 'completed' || raw === 'failed'
        ? raw
        : ['waiting', 'prioritized', 'delayed', 'waiting-children'].includes(raw)
          ? 'waiting'
          : 'unknown';
    return viewOf(job, state, flag?.by ?? null);
  }

  /** Runs a Redis call with a deadline, so a command answers "queue unavailable" instead of hanging. */
  private async guard<T>(call: () => Promise<T>): Promise<T> {
    if (this.redis.status !== 'ready' && this.redis.status !== 'connect' && this.redis.status !== 'wait') {
      throw new QueueUnavailable();
    }
    return orUnavailable(call(), this.timeoutMs);
  }
}

const runningFirstThenOldest = (a: JobView, b: JobView) =>
  a.state === b.state ? Number(a.id) - Number(b.id) : a.state === 'active' ? -1 : 1;

function viewOf(job: Job, state: JobState, cancelledBy: string | null): JobView {
  const progress = TrainProgress.safeParse(job.progress);
  const result = TrainResult.safeParse(job.returnvalue);
  return {
    id: job.id!,
    data: job.data as TrainJobData,
    state,
    progress: progress.success ? progress.data : null,
    result: result.success ? result.data : null,
    failedReason: job.failedReason ?? null,
    addedAt: new Date(job.timestamp),
    cancelledBy,
  };
}
