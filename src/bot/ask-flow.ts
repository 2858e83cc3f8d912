/** Asking a model and streaming the answer into one message: for /ask, and for each turn of a /chat conversation. */
import type { CommandContext } from './command-kit.ts';
import { InvalidInput, UserError } from '../shared/errors.ts';
import { MAX_PROMPT_CHARS, REASONING_EFFORTS } from '../shared/jobs.ts';
import { fitHistory } from './conversations.ts';
import type { RunnerView } from '../shared/runner-registry.ts';

export type Effort = 'low' | 'medium' | 'high';

/**
 * Queues the ask and posts its message; returns once the message is up (the answer streams into it afterwards).
 * `after` runs with the answer when it is complete.
 */
export async function askAndStream(
  ctx: CommandContext,
  model: string,
  messages: { role: 'user' | 'assistant'; content: string }[],
  effort: Effort,
  header: string,
  chat?: { threadId: string; question: string },
): Promise<void> {
  const { bot } = ctx;
  // the name is checked here, before the ask is counted or queued: an unknown one would wait for a runner to refuse it
  await bot.models.forAsk(model);
  await bot.asks.take(ctx.user, bot.config.asksPerMinute);
  const job = await bot.asks.add({
    model,
    messages,
    reasoningEffort: effort,
    requestedBy: { id: ctx.user.id, name: ctx.user.name, platform: ctx.user.platform },
    origin: { platform: ctx.surface.platform, channelId: ctx.channelId },
    header,
    chat,
  });
  const shown = `${header}\n${await waitingLine(ctx)}`;
  const ref = await ctx.reply(shown);
  await bot.asks.remember(job, ref);
  void bot.asks.follow(
    job.id!,
    ctx.surface,
    ref,
    header,
    shown,
    bot.config.progressEditIntervalMs,
    bot.asks.afterAnswer(job.data),
  );
}

/** What an ask's message says until the answer starts: `…`, or which training it waits for and on what device. */
async function waitingLine({ bot }: CommandContext): Promise<string> {
  const training =
    bot.config.inferenceDuringTraining === 'wait'
      ? (await bot.queue.pending()).find((j) => j.state === 'active')
      : undefined;
  if (!training) return '…';
  const runner = (await bot.runners.list().catch(() => [])).find((r) => r.live && r.job?.id === training.id);
  return `⏳ waiting for ${deviceOf(runner)}: training job ${training.id} is running (INFERENCE_DURING_TRAINING=wait)`;
}

/** The device a runner trains on, as its heartbeat tells: what it found, else its backend, else its GPU class. */
export function deviceOf(
  runner: Pick<RunnerView, 'device' | 'backend' | 'gpuClass'> | undefined,
): 'the CPU' | 'the GPU' | 'the runner' {
  const kind =
    runner?.device?.kind ?? (runner?.backend === 'cpu' || runner?.backend === 'cuda' ? runner.backend : undefined);
  if (kind) return kind === 'cpu' ? 'the CPU' : 'the GPU';
  if (!runner || runner.gpuClass === 'unknown' || runner.gpuClass === '') return 'the runner';
  return runner.gpuClass === 'cpu' ? 'the CPU' : 'the GPU';
}

/** Words people type for a reasoning effort that is not one (the efforts are low, medium and high). */
const EFFORT_NEAR_MISSES = new Set(['ultra', 'max', 'minimal', 'med', 'xhigh', 'xlow']);
/** Common first words of a question within one typo of low or high: prose, never flagged. */
const PROSE = new Set([
  'hi',
  'lo',
  'how',
  'now',
  'wow',
  'row',
  'bow',
  'cow',
  'tow',
  'sow',
  'mow',
  'vow',
  'pow',
  'law',
  'log',
  'lot',
  'lol',
  'loo',
  'slow',
  'blow',
  'flow',
  'glow',
  'plow',
  'sigh',
  'nigh',
  'thigh',
  'media',
  'median',
]);

/** Edits (insert, delete, substitute, swap two neighbours) between two words: 'meduim' is 1 from 'medium'. */
export function typoDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        d[i]![j] = Math.min(d[i]![j]!, d[i - 2]![j - 2]! + 1);
    }
  }
  return d[a.length]![b.length]!;
}

/**
 * The first word of a prompt when it looks like a reasoning effort that was mistyped (`/ask latest ultra hi` reads
 * `ultra` as the start of the prompt): a known near-miss, an effort in capitals, or a typo of one — within one edit
 * of low or high, two of medium (shorter words allow fewer: most three-letter words are two edits from low). Null
 * when the prompt is that one word alone, the word is a common one (how, now…), or an effort exactly as typed (on
 * Discord, where effort is a field of its own, `low` in the prompt is prose).
 */
export function effortSlip(prompt: string): string | null {
  const [first, ...rest] = prompt.trim().split(/\s+/);
  if (!first || rest.length === 0 || !/^[A-Za-z]+$/.test(first)) return null;
  const word = first.toLowerCase();
  // `low` as typed: typed text gives it to the effort option, so it is here only from a platform with an effort
  // field of its own (Discord), where it is prose
  if ((REASONING_EFFORTS as readonly string[]).includes(first)) return null;
  if (EFFORT_NEAR_MISSES.has(word)) return first;
  if (PROSE.has(word)) return null;
  const near = REASONING_EFFORTS.some((effort) => typoDistance(word, effort) <= (effort.length >= 6 ? 2 : 1));
  return near ? first : null;
}

export function checkPrompt(prompt: string): string {
  const text = prompt.trim();
  if (!text) throw new InvalidInput('the prompt is empty: /ask latest <what to ask>');
  if (text.length > MAX_PROMPT_CHARS)
    throw new InvalidInput(`the prompt is ${text.length} characters; at most ${MAX_PROMPT_CHARS}`);
  return text;
}

/** One turn of the conversation in this thread: the history (trimmed to the context) and the new message. */
export async function conversationTurn(ctx: CommandContext, threadId: string, text: string): Promise<void> {
  const conversation = await ctx.bot.chats.get(ctx.surface.platform, threadId);
  if (!conversation) throw new UserError('no conversation here: /chat [model] starts one');
  const question = checkPrompt(text);
  const messages = [...fitHistory(conversation.turns), { role: 'user' as const, content: question }];
  await askAndStream(ctx, conversation.model, messages, 'low', `🧵 **${conversation.model}** · ${ctx.user.name}`, {
    threadId,
    question,
  });
}
