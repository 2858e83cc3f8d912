/**
 * /ask on the bot's side: its own queue (a training job never blocks an answer), and one live message per ask that
 * grows as the answer streams and ends with which model answered and how long it took. The reasoning stays hidden.
 */
import { Queue, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { ChatStore } from './conversations.ts';
import type { ChatSurface, MessageRef } from './surface.ts';
import { orUnavailable, UserError } from '../shared/errors.ts';
import { ASK_QUEUE, AskJobData, AskProgress, AskResult } from '../shared/jobs.ts';
import { LiveMessage } from './live-message.ts';
import { logger } from '../shared/log.ts';
import { Follower } from './follower.ts';
import { safeOutput } from './user-text.ts';

const log = logger('asks');
const CURSOR = ' ▍';

interface Entry {
  live: LiveMessage;
  /** Whether the message grows as the answer streams (ChatSurface.showsPartialAnswers). */
  streams: boolean;
  header: string;
  /** Runs with the answer before the follow counts as settled (a conversation stores its turn). */
  after?: (result: AskResult) => Promise<void>;
}

/** The answer, then a line that says which model answered, how fast, and what was left out or cut off. */
export function answerText(r: AskResult): string {
  const notes = [r.reasoning ? 'reasoning hidden' : '', r.complete ? '' : `cut off at ${r.tokens} tokens`].filter(
    Boolean,
  );
  const answer = safeOutput(r.answer).trim() || '(no answer: the model gave none in its final channel)';
  return `${answer}\n— ${r.model} · ${r.tokens} tokens · ${r.durationS.toFixed(1)} s (first token ${r.ttftS.toFixed(2)} s)${notes.length ? ` · ${notes.join(', ')}` : ''}`;
}

/** How an ask ended: the text under its header, and the answer (null if the ask failed). */
interface AskOutcome {
  body: string;
  result: AskResult | null;
}

export class Asks {
  readonly queue: Queue;
  private readonly follower: Follower<Entry, AskOutcome>;

  constructor(
    private readonly connection: Redis,
    private readonly prefix: string,
    private readonly chats?: ChatStore,
  ) {
    this.queue = new Queue(ASK_QUEUE, { connection, prefix });
    this.follower = new Follower(connection, prefix, {
      queue: ASK_QUEUE,
      kind: 'ask',
      progress: (_jobId, f, data) => {
        const p = AskProgress.safeParse(data);
        if (p.success && f.streams) f.live.update(`${f.header}\n${safeOutput(p.data.text)}${CURSOR}`);
      },
      completed: (_jobId, returnvalue) => answered(returnvalue),
      failed: (_jobId, reason) => ({ body: `⚠️ ${reason}`, result: null }),
      catchUp: (jobId) => this.catchUp(jobId),
      finish,
    });
  }

  async ready(): Promise<void> {
    await this.follower.ready();
  }

  /**
   * Counts one ask against a user's limit per minute (a fixed window in Redis, so every bot process shares it);
   * refuses with the wait when the limit is reached.
   */
  async take(user: { id: string; platform: string }, perMinute: number): Promise<void> {
    const window = Math.floor(Date.now() / 60_000);
    const key = `${this.prefix}:asks:${user.platform}:${user.id}:${window}`;
    const [[, count]] = (await orUnavailable(this.connection.multi().incr(key).expire(key, 120).exec())) as [
      [unknown, number],
    ];
    if (count > perMinute) {
      const wait = Math.ceil(((window + 1) * 60_000 - Date.now()) / 1000);
      throw new UserError(`you have asked ${perMinute} times this minute (ASKS_PER_MINUTE); try again in ${wait} s`);
    }
  }

  /** Stores the answer message's id with the ask, so a bot process that restarts can finish that message. */
  remember(job: Job, ref: MessageRef): Promise<void> {
    return this.follower.remember(job, ref);
  }

  /** What happens once an ask is answered: a /chat turn stores the exchange in its conversation. */
  afterAnswer(data: AskJobData): ((result: AskResult) => Promise<void>) | undefined {
    const { chat, origin } = data;
    if (!chat || !this.chats) return undefined;
    const chats = this.chats;
    return async (result) => {
      if (result.answer.trim()) await chats.add(origin.platform, chat.threadId, chat.question, result.answer);
    };
  }

  /**
   * After a restart: finish the messages of asks made on `surface`'s platform that are still waiting or running, or
   * that were answered while no bot process was there to show it (their message still says "…").
   */
  async resume(surface: ChatSurface, intervalMs?: number): Promise<string[]> {
    const resumed: string[] = [];
    for (const { id, data, ref } of await this.follower.unfinished.of(
      this.queue,
      AskJobData,
      surface.platform,
      this.follower,
    )) {
      if (data.header === undefined) continue;
      void this.follow(id, surface, ref, data.header, `${data.header}\n…`, intervalMs, this.afterAnswer(data));
      resumed.push(id);
    }
    return resumed;
  }

  async add(data: AskJobData) {
    return orUnavailable(
      this.queue.add('ask', AskJobData.parse(data), {
        attempts: 2,
        removeOnComplete: { count: 200 },
        removeOnFail: { count: 200 },
      }),
    );
  }

  /**
   * Grows `ref` with the answer as it streams; resolves with the answer (null if the ask failed). An ask followed
   * already keeps its first message (every ask has a new id; a restarted bot skips the ones it follows).
   */
  async follow(
    jobId: string,
    surface: ChatSurface,
    ref: MessageRef,
    header: string,
    shown: string,
    intervalMs?: number,
    after?: (result: AskResult) => Promise<void>,
  ): Promise<AskResult | null> {
    const outcome = await this.follower.follow(jobId, () => {
      const interval = Math.max(intervalMs ?? surface.editIntervalMs, surface.minEditIntervalMs);
      return {
        live: new LiveMessage(surface, ref, shown, interval),
        streams: surface.showsPartialAnswers !== false,
        header,
        after,
      };
    });
    return outcome.result;
  }

  /** An ask that ended before the follow began (a quick answer) still gets its last edit. */
  private async catchUp(jobId: string): Promise<AskOutcome | undefined> {
    const job = await this.queue.getJob(jobId).catch(() => undefined);
    const state = await job?.getState().catch(() => 'unknown');
    if (state === 'completed') {
      const r = AskResult.safeParse(job!.returnvalue);
      if (r.success) return { body: answerText(r.data), result: r.data };
    } else if (state === 'failed') return { body: `⚠️ ${job!.failedReason}`, result: null };
    return undefined;
  }

  get following(): string[] {
    return this.follower.following;
  }

  settled(): Promise<void> {
    return this.follower.settled();
  }

  async close(): Promise<void> {
    await this.follower.close();
    await this.queue.close();
  }
}

function answered(returnvalue: unknown): AskOutcome {
  const r = AskResult.safeParse(returnvalue);
  return r.success
    ? { body: answerText(r.data), result: r.data }
    : { body: '⚠️ the runner returned no answer', result: null };
}

/** The last edit. A /chat turn is stored first: a reply typed at once then has it in its history. */
async function finish(jobId: string, f: Entry, outcome: AskOutcome): Promise<void> {
  if (outcome.result && f.after)
    await f.after(outcome.result).catch((e) => log.warn(`after the answer to ask ${jobId}`, e));
  await f.live.finish(`${f.header}\n${outcome.body}`);
}
