/**
 * Follows queued work to its end for the chat, whatever the work (a training job, an ask): one QueueEvents
 * subscription per queue and bot process; for every followed job an entry (its live message) that progress events
 * update and the job's end settles, once. A follow that begins after the job moved on or ended catches up at once.
 * The message id is remembered with the job until its last edit (src/bot/unfinished.ts), so a bot process that
 * restarts finishes what the last one left.
 */
import { QueueEvents, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { parseJsonOrNull } from '../shared/jobs.ts';
import { logger } from '../shared/log.ts';
import { connectionErrorOr } from '../shared/redis.ts';
import type { MessageRef } from './surface.ts';
import { UnfinishedMessages } from './unfinished.ts';

const log = logger('follower');

/** What one kind of work means to its follower: how its events read, and how its message ends. */
export interface WorkKind<Entry, Outcome> {
  queue: string;
  /** The name of its set of unfinished messages. */
  kind: 'job' | 'ask';
  /** A progress event of a followed job. */
  progress(jobId: string, entry: Entry, data: unknown): void;
  /** The job's return value, as BullMQ's event carries it (parsed already, or JSON). */
  completed(jobId: string, returnvalue: unknown): Outcome;
  failed(jobId: string, reason: string): Outcome;
  /** A job removed from the queue (a cancel while it waited), where the kind can be removed. */
  removed?(jobId: string): Promise<Outcome>;
  /** Where a job is when its follow begins: how it ended, or undefined (the kind shows any progress itself). */
  catchUp(jobId: string, entry: Entry): Promise<Outcome | undefined>;
  /** The last edit of the message. */
  finish(jobId: string, entry: Entry, outcome: Outcome): Promise<void>;
  /** After the last edit is marked as made: what else the end says (a mention of whoever asked). */
  announce?(jobId: string, entry: Entry, outcome: Outcome): Promise<void>;
}

interface Followed<Entry, Outcome> {
  entry: Entry;
  settle: (outcome: Outcome) => void;
  outcome: Promise<Outcome>;
}

export class Follower<Entry, Outcome> {
  private readonly events: QueueEvents;
  private readonly followed = new Map<string, Followed<Entry, Outcome>>();
  readonly unfinished: UnfinishedMessages;

  constructor(
    connection: Redis,
    prefix: string,
    private readonly work: WorkKind<Entry, Outcome>,
  ) {
    this.unfinished = new UnfinishedMessages(connection, prefix, work.kind);
    // QueueEvents blocks on its connection: BullMQ duplicates this one for it, and closes the duplicate itself.
    this.events = new QueueEvents(work.queue, { connection, prefix });
    this.events.on('progress', ({ jobId, data }) => {
      const f = this.followed.get(jobId);
      if (f) work.progress(jobId, f.entry, data);
    });
    this.events.on('completed', ({ jobId, returnvalue }) => {
      if (!this.followed.has(jobId)) return;
      void this.end(
        jobId,
        work.completed(jobId, typeof returnvalue === 'string' ? parseJsonOrNull(returnvalue) : returnvalue),
      );
    });
    this.events.on('failed', ({ jobId, failedReason }) => {
      if (this.followed.has(jobId)) void this.end(jobId, work.failed(jobId, failedReason));
    });
    const { removed } = work;
    if (removed) {
      this.events.on('removed', ({ jobId }) => {
        if (!this.followed.has(jobId)) return;
        void removed.call(work, jobId).then(
          (o) => this.end(jobId, o),
          (e: Error) => log.warn(`${work.kind} ${jobId} was removed, and how it ended is unknown`, e),
        );
      });
    }
    this.events.on(
      'error',
      connectionErrorOr((e) => log.warn(`${work.queue} events`, e)),
    );
  }

  async ready(): Promise<void> {
    await this.events.waitUntilReady();
  }

  /**
   * Follows `jobId` until it ends, with the entry `make` gives (its live message); resolves with how it ended. A job
   * followed already keeps the entry it has.
   */
  follow(jobId: string, make: () => Entry): Promise<Outcome> {
    const existing = this.followed.get(jobId);
    if (existing) return existing.outcome;
    const entry = make();
    let settle!: (o: Outcome) => void;
    const outcome = new Promise<Outcome>((resolve) => (settle = resolve));
    this.followed.set(jobId, { entry, settle, outcome });
    void this.catchUp(jobId, entry);
    return outcome;
  }

  has(jobId: string): boolean {
    return this.followed.has(jobId);
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

  private async catchUp(jobId: string, entry: Entry): Promise<void> {
    const ended = await this.work
      .catchUp(jobId, entry)
      .catch((e: Error) => log.debug(`catch-up of ${this.work.kind} ${jobId}: ${e.message}`));
    if (ended !== undefined) await this.end(jobId, ended);
  }

  /** The end, once: the last edit, the mark that it was made, the announcement; the follow settles whatever fails. */

  private async end(jobId: string, outcome: Outcome): Promise<void> {
    const f = this.followed.get(jobId);
    if (!f) return;
    this.followed.delete(jobId);
    try {
      await this.work.finish(jobId, f.entry, outcome);
      // Shown: a bot process that starts later leaves this message alone. A crash before this shows it again.
      await this.unfinished.finished(jobId);
      await this.work.announce?.(jobId, f.entry, outcome);
    } catch (e) {
      log.warn(`the end of ${this.work.kind} ${jobId}`, e);
    } finally {
      f.settle(outcome);
    }
  }
}
