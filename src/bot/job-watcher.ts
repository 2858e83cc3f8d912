/**
 * Follows training jobs for the chat: one QueueEvents subscription per bot process, and for every followed job one
 * live message (a header line, then a status line that shows progress) that ends with the result or the failure, the
 * loss curve attached where the platform can, and a mention of whoever asked.
 */
import type { Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { ChatSurface, MessageRef } from './surface.ts';
import { failedLine, finishedLine, jobHeader, noticeLine, progressLine } from './format.ts';
import { cancelledLine, TRAIN_QUEUE, TrainJobData, TrainProgress, TrainResult } from '../shared/jobs.ts';
import { LiveMessage } from './live-message.ts';
import { logger } from '../shared/log.ts';
import { Follower } from './follower.ts';
import { renderLossCurve } from './loss-curve.ts';
import type { TrainQueue } from './queue.ts';

const log = logger('watcher');

export type JobOutcome =
  | { state: 'completed'; result: TrainResult }
  | { state: 'failed' | 'cancelled'; reason: string };

export interface FollowOptions {
  /** The job's data: its header line, and whom to mention at the end. */
  data: TrainJobData;
  /** The status line the message shows now, under the header. */
  status: string;
  /** Overrides the platform's edit interval (ms). */
  intervalMs?: number;
}

interface Entry {
  live: LiveMessage;
  surface: ChatSurface;
  ref: MessageRef;
  header: string;
  data: TrainJobData;
  /** How many of the run's notices the channel has been shown. */
  noticesShown: number;
}

export class JobWatcher {
  private readonly follower: Follower<Entry, JobOutcome>;

  constructor(
    connection: Redis,
    private readonly queue: TrainQueue,
  ) {
    this.follower = new Follower(connection, queue.prefix, {
      queue: TRAIN_QUEUE,
      kind: 'job',
      progress: (jobId, entry, data) => {
        const p = TrainProgress.safeParse(data);
        if (p.success) show(jobId, entry, p.data);
      },
      completed: (_jobId, returnvalue) => {
        const r = TrainResult.safeParse(returnvalue);
        return r.success
          ? { state: 'completed', result: r.data }
          : { state: 'failed', reason: 'the runner returned no result' };
      },
      failed: (_jobId, reason) => ({ state: /^cancelled/.test(reason) ? 'cancelled' : 'failed', reason }),
      removed: async (jobId) => {
        // removed from the queue: it was cancelled, whether or not Redis still says by whom
        const flag = await this.queue.cancelFlag(jobId).catch(() => null);
        return { state: 'cancelled', reason: flag ? cancelledLine(flag) : 'cancelled before it started' };
      },
      catchUp: (jobId, entry) => this.catchUp(jobId, entry),
      finish,
      announce,
    });
  }

  async ready(): Promise<void> {
    await this.follower.ready();
  }

  /**
   * Keep message `ref` up to date with job `jobId` until it ends; resolves with how it ended. Catches up with a job
   * that moved on (or ended) before the follow began.
   */
  follow(jobId: string, surface: ChatSurface, ref: MessageRef, options: FollowOptions): Promise<JobOutcome> {
    return this.follower.follow(jobId, () => {
      const header = jobHeader(jobId, options.data);
      const interval = Math.max(options.intervalMs ?? surface.editIntervalMs, surface.minEditIntervalMs);
      const live = new LiveMessage(surface, ref, `${header}\n${options.status}`, interval);
      return { live, surface, ref, header, data: options.data, noticesShown: 0 };
    });
  }

  /**
   * After a restart: follow again every waiting or running job that was asked for on `surface`'s platform and whose
   * message id was stored with it, editing the same message; and finish the messages of jobs that ended while no
   * bot process was up (they still show their last progress).
   */
  async resume(surface: ChatSurface, intervalMs?: number): Promise<string[]> {
    const resumed: string[] = [];
    for (const job of await this.queue.pending()) {
      const { origin } = job.data;
      if (origin.platform !== surface.platform || !origin.messageId || this.follower.has(job.id)) continue;
      const status = job.progress ? progressLine(job.id, job.progress) : '🕒 waiting for a runner';
      void this.follow(
        job.id,
        surface,
        { channelId: origin.channelId, id: origin.messageId },
        { data: job.data, status, intervalMs },
      );
      resumed.push(job.id);
    }
    // and those whose last edit never came: they ended while no bot process was up
    for (const { id, data, ref } of await this.follower.unfinished.of(
      this.queue.queue,
      TrainJobData,
      surface.platform,
      this.follower,
    )) {
      void this.follow(id, surface, ref, { data, status: '…', intervalMs });
      resumed.push(id);
    }
    return resumed;
  }

  /** Stores the job's message id with it (Follower.remember): a restarted bot edits the same message. */
  remember(job: Job, ref: MessageRef): Promise<void> {
    return this.follower.remember(job, ref);
  }

  /** Jobs this process follows that have not ended. */
  get following(): string[] {
    return this.follower.following;
  }

  settled(): Promise<void> {
    return this.follower.settled();
  }

  close(): Promise<void> {
    return this.follower.close();
  }

  private async catchUp(jobId: string, entry: Entry): Promise<JobOutcome | undefined> {
    try {
      const view = await this.queue.view(jobId);
      if (view.state === 'completed' && view.result) return { state: 'completed', result: view.result };
      if (view.state === 'failed' || view.state === 'cancelled')
        return { state: view.state, reason: view.failedReason ?? 'failed' };
      // the job may have ended while its view was read: no notice after the last edit
      if (view.progress && this.follower.has(jobId)) show(jobId, entry, view.progress);
      return undefined;
    } catch (e) {
      const flag = await this.queue.cancelFlag(jobId).catch(() => null);
      if (flag) return { state: 'cancelled', reason: cancelledLine(flag) };
      throw e;
    }
  }
}

/** A progress update: the status line, and once each, the run's notices (a dataset smaller than asked for). */
function show(jobId: string, f: Entry, progress: TrainProgress): void {
  for (const notice of progress.notices.slice(f.noticesShown)) {
    void f.surface
      .post(f.ref.channelId, noticeLine(jobId, notice))
      .catch((e) => log.warn('could not post a notice', e));
  }
  f.noticesShown = Math.max(f.noticesShown, progress.notices.length);
  f.live.update(`${f.header}\n${progressLine(jobId, progress)}`);
}

/** The last edit: the result or the failure, with the loss curve attached where the platform can. */
async function finish(jobId: string, f: Entry, outcome: JobOutcome): Promise<void> {
  const line = outcome.state === 'completed' ? finishedLine(jobId, outcome.result) : failedLine(jobId, outcome.reason);
  const text = `${f.header}\n${line}`;
  const { finish } = f.surface;
  if (outcome.state === 'completed' && outcome.result.losses.length > 0 && finish) {
    const png = renderLossCurve(outcome.result.losses, outcome.result.firstStep);
    const file = { name: `loss-curve-job-${jobId}.png`, data: png, title: `Loss curve of ${outcome.result.modelName}` };
    await f.live.finish(text, (t) => finish.call(f.surface, f.ref, t, file));
  } else {
    await f.live.finish(text);
  }
}

/** An edit notifies nobody: whoever asked hears of the end through a new message that mentions them. */
async function announce(jobId: string, f: Entry, outcome: JobOutcome): Promise<void> {
  const { requestedBy } = f.data;
  if (!f.surface.mention || requestedBy.platform !== f.surface.platform) return;
  const short =
    outcome.state === 'completed'
      ? `job ${jobId} is done: \`${outcome.result.modelName}\``
      : `job ${jobId} ${outcome.state === 'cancelled' ? 'was cancelled' : 'failed'}`;
  await f.surface
    .post(f.ref.channelId, `${f.surface.mention(requestedBy.id)} ${short}`, { ping: requestedBy.id })
    .catch((e) => log.warn('could not notify the requester', e));
}
