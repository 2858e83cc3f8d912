/** The bot's side of the training queue: add, look up, list and cancel jobs. Redis is the only state. */
import { Job, Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { InvalidInput, JobNotFound, orUnavailable, QueueUnavailable, QUEUE_DEADLINE_MS, UserError } from './errors.ts';
import { CANCEL_FLAG_TTL_S, keys, readCancelFlag, TRAIN_QUEUE, TrainJobData, TrainProgress, TrainResult, type CancelFlag } from './jobs.ts';

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
        // Another try only when the runner went away (shutdown, lost host); a trainer's own failure is final.
        attempts: 3,
        backoff: { type: 'fixed', delay: 5_000 },
        removeOnComplete: { count: 500 },
        removeOnFail: { count: 500 },
      }),
    );
    const [state, waiting, active] = await this.guard(() =>
      Promise.all([job.getState(), this.queue.getWaiting(), this.queue.getActiveCount()]),
    );
    if (state === 'active') return { job, position: 0, running: active - 1 };
    const ahead = waiting.filter((j) => Number(j.id) < Number(job.id)).length;
    return { job, position: ahead + 1, running: active };
  }

  async view(id: string): Promise<JobView> {
    const job = await this.guard(() => this.queue.getJob(id));
    if (!job) {
      const flag = await this.cancelFlag(id);
      if (!flag) throw new JobNotFound(id);
      throw new UserError(`job ${id} (${flag.profile}) was cancelled by ${flag.by} before it started`);
    }
    return this.toView(job);
  }

  /** Jobs waiting or running, oldest first. */
  async pending(): Promise<JobView[]> {
    const jobs = await this.guard(() => this.queue.getJobs(['active', 'waiting', 'prioritized', 'delayed']));
    const views = await Promise.all(jobs.map((j) => this.toView(j)));
    return views.sort((a, b) => (a.state === b.state ? Number(a.id) - Number(b.id) : a.state === 'active' ? -1 : 1));
  }

  /**
   * Cancel a job in any state. A waiting job is removed at once; a running one is signalled, and the runner that holds
   * it stops its trainer. The flag is set first, so a runner that takes the job in between still sees it.
   */
  async cancel(id: string, by: string): Promise<'removed' | 'signalled'> {
    const job = await this.guard(() => this.queue.getJob(id));
    if (!job) throw new JobNotFound(id);
    const state = await job.getState();
    if (state === 'completed' || state === 'failed') throw new InvalidInput(`job ${id} already ${state}`);
    const flag: CancelFlag = { by, at: new Date().toISOString(), profile: String(job.data.profile) };
    await this.guard(() => this.redis.set(keys.cancelFlag(this.prefix, id), JSON.stringify(flag), 'EX', CANCEL_FLAG_TTL_S));
    if (state !== 'active') {
      try {
        await job.remove();
        return 'removed';
      } catch {
        // taken by a runner meanwhile: signal it like any running job
      }
    }
    await this.guard(() => this.redis.publish(keys.cancelChannel(this.prefix), id));
    return 'signalled';
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
      cancelledBy: flag?.by ?? null,
    };
  }

  /** Runs a Redis call with a deadline, so a command answers "queue unavailable" instead of hanging. */
  private async guard<T>(call: () => Promise<T>): Promise<T> {
    if (this.redis.status !== 'ready' && this.redis.status !== 'connect' && this.redis.status !== 'wait') {
      throw new QueueUnavailable();
    }
    return orUnavailable(call(), this.timeoutMs);
  }
}
