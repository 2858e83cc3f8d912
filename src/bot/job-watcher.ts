/**
 * Follows training jobs for the chat: one QueueEvents subscription per bot process, and for every followed job one
 * live message (a header line, then a status line that shows progress) that ends with the result or the failure, the
 * loss curve attached where the platform can, and a mention of whoever asked.
 */
import { QueueEvents, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { ChatSurface, MessageRef } from './surface.ts';
import { failedLine, finishedLine, jobHeader, noticeLine, progressLine } from './format.ts';
import { cancelledLine, parseJsonOrNull, TRAIN_QUEUE, TrainJobData, TrainProgress, TrainResult } from '../shared/jobs.ts';
import { LiveMessage } from './live-message.ts';
import { logger } from '../shared/log.ts';
import { connectionErrorOr } from '../shared/redis.ts';
import { UnfinishedMessages } from './unfinished.ts';
import { renderLossCurve } from './loss-curve.ts';
import type { TrainQueue } from './queue.ts';

const log = logger('watcher');

export type JobOutcome = { state: 'completed'; result: TrainResult } | { state: 'failed' | 'cancelled'; reason: string };

export interface FollowOptions {
  /** The job's data: its header line, and whom to mention at the end. */
  data: TrainJobData;
  /** The status line the message shows now, under the header. */
  status: string;
  /** Overrides the platform's edit interval (ms). */
  intervalMs?: number;
}

interface Followed {
  live: LiveMessage;
  surface: ChatSurface;
  ref: MessageRef;
  header: string;
  data: TrainJobData;
  /** How many of the run's notices the channel has been shown. */
  noticesShown: number;
  settle: (outcome: JobOutcome) => void;
  outcome: Promise<JobOutcome>;
}

export class JobWatcher {
  private readonly events: QueueEvents;
  private readonly followed = new Map<string, Followed>();
  private readonly unfinished: UnfinishedMessages;

  constructor(
    connection: Redis,
    private readonly queue: TrainQueue,
  ) {
    this.unfinished = new UnfinishedMessages(connection, queue.prefix, 'job');
    // QueueEvents blocks on its connection: BullMQ duplicates this one for it, and closes the duplicate itself.
    this.events = new QueueEvents(TRAIN_QUEUE, { connection, prefix: queue.prefix });
    this.events.on('progress', ({ jobId, data }) => {
      const p = TrainProgress.safeParse(data);
      if (p.success) this.show(jobId, p.data);
    });
    this.events.on('completed', ({ jobId, returnvalue }) => {
      const r = TrainResult.safeParse(typeof returnvalue === 'string' ? parseJsonOrNull(returnvalue) : returnvalue);
      if (r.success) void this.end(jobId, { state: 'completed', result: r.data });
      else void this.end(jobId, { state: 'failed', reason: 'the runner returned no result' });
    });
    this.events.on('failed', ({ jobId, failedReason }) => {
      void this.end(jobId, { state: /^cancelled/.test(failedReason) ? 'cancelled' : 'failed', reason: failedReason });
    });
    this.events.on('removed', ({ jobId }) => {
      void this.queue.cancelFlag(jobId).then((flag) =>
        this.end(jobId, { state: 'cancelled', reason: flag ? cancelledLine(flag) : 'cancelled before it started' }),
      );
    });
    this.events.on('error', connectionErrorOr((e) => log.warn('queue events', e)));
  }

  async ready(): Promise<void> {
    await this.events.waitUntilReady();
  }

  /**
   * Keep message `ref` up to date with job `jobId` until it ends; resolves with how it ended. Catches up with a job
   * that moved on (or ended) before the follow began.
   */
  follow(jobId: string, surface: ChatSurface, ref: MessageRef, options: FollowOptions): Promise<JobOutcome> {
    const existing = this.followed.get(jobId);
    if (existing) return existing.outcome;
    let settle!: (o: JobOutcome) => void;
    const outcome = new Promise<JobOutcome>((resolve) => (settle = resolve));
    const header = jobHeader(jobId, options.data);
    const interval = Math.max(options.intervalMs ?? surface.editIntervalMs, surface.minEditIntervalMs);
    const live = new LiveMessage(surface, ref, `${header}\n${options.status}`, interval);
    this.followed.set(jobId, { live, surface, ref, header, data: options.data, noticesShown: 0, settle, outcome });
    void this.catchUp(jobId);
    return outcome;
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
      if (origin.platform !== surface.platform || !origin.messageId || this.followed.has(job.id)) continue;
      const status = job.progress ? progressLine(job.id, job.progress) : '🕒 waiting for a runner';
      void this.follow(job.id, surface, { channelId: origin.channelId, id: origin.messageId }, { data: job.data, status, intervalMs });
      resumed.push(job.id);
    }
    // and those whose last edit never came: they ended while no bot process was up
    for (const { id, data, ref } of await this.unfinished.of(this.queue.queue, TrainJobData, surface.platform, this.followed)) {
      void this.follow(id, surface, ref, { data, status: '…', intervalMs });
      resumed.push(id);
    }
    return resumed;
  }

  /**
   * Stores the job's message id with it, so a restarted bot edits the same message, and marks the message as not
   * yet ended: the mark goes with its last edit, and a bot that starts while it is there makes that edit.
   */
  remember(job: Job, ref: MessageRef): Promise<void> {
    return this.unfinished.remember(job, ref);
  }

  /** Jobs this process follows that have not ended. */
  get following(): string[] {
    return [...this.followed.keys()];
  }

  async settled(): Promise<void> {
    await Promise.all([...this.followed.values()].map((f) => f.outcome));
  }

  async close(): Promise<void> {
    await this.events.close();
  }

  private async catchUp(jobId: string): Promise<void> {
    try {
      const view = await this.queue.view(jobId);
      if (view.state === 'completed' && view.result) await this.end(jobId, { state: 'completed', result: view.result });
      else if (view.state === 'failed' || view.state === 'cancelled') {
        await this.end(jobId, { state: view.state, reason: view.failedReason ?? 'failed' });
      } else if (view.progress) this.show(jobId, view.progress);
    } catch (e) {
      const flag = await this.queue.cancelFlag(jobId).catch(() => null);
      if (flag) await this.end(jobId, { state: 'cancelled', reason: cancelledLine(flag) });
      else log.debug(`catch-up of job ${jobId}: ${(e as Error).message}`);
    }
  }

  /** A progress update: the status line, and once each, the run's notices (a dataset smaller than asked for). */
  private show(jobId: string, progress: TrainProgress): void {
    const f = this.followed.get(jobId);
    if (!f) return;
    for (const notice of progress.notices.slice(f.noticesShown)) {
      void f.surface.post(f.ref.channelId, noticeLine(jobId, notice)).catch((e) => log.warn('could not post a notice', e));
    }
    f.noticesShown = Math.max(f.noticesShown, progress.notices.length);
    f.live.update(`${f.header}\n${progressLine(jobId, progress)}`);
  }

  private async end(jobId: string, outcome: JobOutcome): Promise<void> {
    const f = this.followed.get(jobId);
    if (!f) return;
    this.followed.delete(jobId);
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
    // Shown: a bot process that starts later leaves this message alone.
    await this.unfinished.finished(jobId);
    // An edit notifies nobody: whoever asked hears of the end through a new message that mentions them.
    const { requestedBy } = f.data;
    if (f.surface.mention && requestedBy.platform === f.surface.platform) {
      const short = outcome.state === 'completed' ? `job ${jobId} is done: \`${outcome.result.modelName}\`` : `job ${jobId} ${outcome.state === 'cancelled' ? 'was cancelled' : 'failed'}`;
      await f.surface.post(f.ref.channelId, `${f.surface.mention(requestedBy.id)} ${short}`, { ping: requestedBy.id }).catch((e) => log.warn('could not notify the requester', e));
    }
    f.settle(outcome);
  }
}
