/**
 * Follows training jobs for the chat: one QueueEvents subscription per bot process, and for every followed job a live
 * message that shows its progress and, at the end, its result or failure.
 */
import { QueueEvents } from 'bullmq';
import type { Redis } from 'ioredis';
import type { ChatSurface, MessageRef } from './command-kit.ts';
import { failedLine, finishedLine, noticeLine, progressLine } from './format.ts';
import { TRAIN_QUEUE, TrainProgress, TrainResult } from './jobs.ts';
import { LiveMessage } from './live-message.ts';
import { logger } from './log.ts';
import type { TrainQueue } from './queue.ts';

const log = logger('watcher');

export type JobOutcome = { state: 'completed'; result: TrainResult } | { state: 'failed' | 'cancelled'; reason: string };

interface Followed {
  live: LiveMessage;
  surface: ChatSurface;
  channelId: string;
  /** How many of the run's notices the channel has been shown. */
  noticesShown: number;
  settle: (outcome: JobOutcome) => void;
  outcome: Promise<JobOutcome>;
  /** Called with every progress update (after the message edit is scheduled). */
  onProgress?: (p: TrainProgress) => void;
}

export class JobWatcher {
  private readonly events: QueueEvents;
  private readonly followed = new Map<string, Followed>();

  constructor(
    connection: Redis,
    private readonly queue: TrainQueue,
  ) {
    // QueueEvents blocks on its connection: BullMQ duplicates this one for it, and closes the duplicate itself.
    this.events = new QueueEvents(TRAIN_QUEUE, { connection, prefix: queue.prefix });
    this.events.on('progress', ({ jobId, data }) => {
      const p = TrainProgress.safeParse(data);
      if (p.success) this.show(jobId, p.data);
    });
    this.events.on('completed', ({ jobId, returnvalue }) => {
      const r = TrainResult.safeParse(typeof returnvalue === 'string' ? safeJson(returnvalue) : returnvalue);
      if (r.success) void this.end(jobId, { state: 'completed', result: r.data });
      else void this.end(jobId, { state: 'failed', reason: 'the runner returned no result' });
    });
    this.events.on('failed', ({ jobId, failedReason }) => {
      void this.end(jobId, { state: /^cancelled/.test(failedReason) ? 'cancelled' : 'failed', reason: failedReason });
    });
    this.events.on('removed', ({ jobId }) => {
      void this.queue.cancelFlag(jobId).then((flag) =>
        this.end(jobId, { state: 'cancelled', reason: `cancelled by ${flag?.by ?? 'someone'} before it started` }),
      );
    });
    this.events.on('error', (e) => log.warn('queue events', e));
  }

  async ready(): Promise<void> {
    await this.events.waitUntilReady();
  }

  /**
   * Keep `ref` up to date with job `jobId` until it ends; resolves with how it ended. Catches up with a job that moved
   * on (or ended) before the follow began.
   */
  follow(jobId: string, surface: ChatSurface, ref: MessageRef, shownText: string, intervalMs = surface.editIntervalMs, onProgress?: (p: TrainProgress) => void): Promise<JobOutcome> {
    const existing = this.followed.get(jobId);
    if (existing) return existing.outcome;
    let settle!: (o: JobOutcome) => void;
    const outcome = new Promise<JobOutcome>((resolve) => (settle = resolve));
    const live = new LiveMessage(surface, ref, shownText, intervalMs);
    const followed: Followed = { live, surface, channelId: ref.channelId, noticesShown: 0, settle, outcome, onProgress };
    this.followed.set(jobId, followed);
    void this.catchUp(jobId);
    return outcome;
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
      if (flag) await this.end(jobId, { state: 'cancelled', reason: `cancelled by ${flag.by} before it started` });
      else log.debug(`catch-up of job ${jobId}: ${(e as Error).message}`);
    }
  }

  /** A progress update: the status line, and once each, the run's notices (a dataset smaller than asked for). */
  private show(jobId: string, progress: TrainProgress): void {
    const f = this.followed.get(jobId);
    if (!f) return;
    for (const notice of progress.notices.slice(f.noticesShown)) {
      void f.surface.post(f.channelId, noticeLine(jobId, notice)).catch((e) => log.warn('could not post a notice', e));
    }
    f.noticesShown = Math.max(f.noticesShown, progress.notices.length);
    f.live.update(progressLine(jobId, progress));
    f.onProgress?.(progress);
  }

  private async end(jobId: string, outcome: JobOutcome): Promise<void> {
    const f = this.followed.get(jobId);
    if (!f) return;
    this.followed.delete(jobId);
    const text = outcome.state === 'completed' ? finishedLine(jobId, outcome.result) : failedLine(jobId, outcome.reason);
    await f.live.finish(text);
    f.settle(outcome);
  }
}

function safeJson(s: string): unknown {
  try {
    return JSON.parse(s);
  } catch {
    return null;
  }
}
