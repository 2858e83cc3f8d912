/**
 * Conversations with an adapter (/chat): one per thread (a Discord thread, a Slack thread, a console session), kept
 * in Redis so a restarted bot goes on with it, trimmed from the oldest turn to fit the model's context.
 */
import type { Redis } from 'ioredis';
import { z } from 'zod';
import { orUnavailable } from '../shared/errors.ts';

/** About 3,000 tokens of history: room for the answer in a 4,096-token context. */
export const MAX_HISTORY_CHARS = 12_000;
const TTL_S = 7 * 24 * 3600;

const Turn = z.object({ role: z.enum(['user', 'assistant']), content: z.string() });
export const Conversation = z.object({
  model: z.string(),
  openedBy: z.string(),
  /** The channel the thread belongs to: access rules by channel apply to its turns. */
  channelId: z.string().optional(),
  turns: z.array(Turn),
});
export type Conversation = z.infer<typeof Conversation>;
export type Turn = z.infer<typeof Turn>;

/** The newest turns whose text fits in `budget` characters, starting with a user turn. */
export function fitHistory(turns: readonly Turn[], budget = MAX_HISTORY_CHARS): Turn[] {
  const kept: Turn[] = [];
  let used = 0;
  for (let i = turns.length - 1; i >= 0; i--) {
    used += turns[i]!.content.length;
    if (used > budget) break;
    kept.unshift(turns[i]!);
  }
  while (kept.length && kept[0]!.role !== 'user') kept.shift();
  return kept;
}

export class ChatStore {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  private key(platform: string, threadId: string): string {
    return `${this.prefix}:chat:${platform}:${threadId}`;
  }

  async open(platform: string, threadId: string, model: string, openedBy: string, channelId: string): Promise<void> {
    const conversation: Conversation = { model, openedBy, channelId, turns: [] };
    await this.guard(this.redis.set(this.key(platform, threadId), JSON.stringify(conversation), 'EX', TTL_S));
  }

  async get(platform: string, threadId: string): Promise<Conversation | null> {
    const raw = await this.guard(this.redis.get(this.key(platform, threadId)));
    const parsed = raw ? Conversation.safeParse(JSON.parse(raw)) : null;
    return parsed?.success ? parsed.data : null;
  }

  /**
   * Adds one exchange and trims what no longer fits; the conversation lives another week from now. Optimistic: if
   * another turn wrote the conversation meanwhile (WATCH), read it again, so no finished exchange is overwritten.
   */
  async add(platform: string, threadId: string, question: string, answer: string): Promise<void> {
    const key = this.key(platform, threadId);
    const client = this.redis.duplicate(); // WATCH belongs to a connection: not the shared one
    try {
      for (let attempt = 0; attempt < 10; attempt++) {
        await this.guard(client.watch(key));
        const raw = await this.guard(client.get(key));
        const parsed = raw ? Conversation.safeParse(JSON.parse(raw)) : null;
        if (!parsed?.success) return void (await client.unwatch());
        const turns = fitHistory([
          ...parsed.data.turns,
          { role: 'user', content: question },
          { role: 'assistant', content: answer },
        ]);
        const done = await this.guard(
          client
            .multi()
            .set(key, JSON.stringify({ ...parsed.data, turns }), 'EX', TTL_S)
            .exec(),
        );
        if (done) return;
      }
    } finally {
      client.disconnect();
    }
  }

  private guard<T>(call: Promise<T>): Promise<T> {
    return orUnavailable(call);
  }
}
