/** Asking a model and streaming the answer into one message: for /ask, and for each turn of a /chat conversation. */
import type { CommandContext } from './command-kit.ts';
import { InvalidInput, UserError } from './errors.ts';
import { MAX_PROMPT_CHARS } from './jobs.ts';
import { fitHistory } from './chats.ts';

export type Effort = 'low' | 'medium' | 'high';

/**
 * Queues the ask and posts its message; returns once the message is up (the answer streams into it afterwards).
 * `after` runs with the answer when it is complete.
 */
export async function askAndStream(ctx: CommandContext, model: string, messages: { role: 'user' | 'assistant'; content: string }[], effort: Effort, header: string, chat?: { threadId: string; question: string }): Promise<void> {
  const { bot } = ctx;
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
  const training = bot.config.inferenceDuringTraining === 'wait' ? (await bot.queue.pending()).find((j) => j.state === 'active') : undefined;
  const shown = `${header}\n${training ? `⏳ waiting for the GPU: training job ${training.id} is running (INFERENCE_DURING_TRAINING=wait)` : '…'}`;
  const ref = await ctx.reply(shown);
  await bot.asks.remember(job, ref);
  void bot.asks.follow(job.id!, ctx.surface, ref, header, shown, bot.config.progressEditIntervalMs, bot.asks.afterAnswer(job.data));
}

export function checkPrompt(prompt: string): string {
  const text = prompt.trim();
  if (!text) throw new InvalidInput('the prompt is empty: /ask latest <what to ask>');
  if (text.length > MAX_PROMPT_CHARS) throw new InvalidInput(`the prompt is ${text.length} characters; at most ${MAX_PROMPT_CHARS}`);
  return text;
}

/** One turn of the conversation in this thread: the history (trimmed to the context) and the new message. */
export async function chatTurn(ctx: CommandContext, threadId: string, text: string): Promise<void> {
  const conversation = await ctx.bot.chats.get(ctx.surface.platform, threadId);
  if (!conversation) throw new UserError('no conversation here: /chat [model] starts one');
  const question = checkPrompt(text);
  const messages = [...fitHistory(conversation.turns), { role: 'user' as const, content: question }];
  await askAndStream(ctx, conversation.model, messages, 'low', `🧵 **${conversation.model}** · ${ctx.user.name}`, { threadId, question });
}
