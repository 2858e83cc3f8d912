/** /ask <model> <prompt>: an answer from an adapter (latest, base, or a model's name), streamed into one message. */
import { defineCommand } from '../src/command-kit.ts';
import { InvalidInput } from '../src/errors.ts';
import { MAX_PROMPT_CHARS, REASONING_EFFORTS } from '../src/jobs.ts';
import { isSafeModelName } from '../src/model-names.ts';

export default defineCommand({
  name: 'ask',
  description: 'Ask a trained model (latest, base, or a model name)',
  permission: 'ask',
  options: [
    { name: 'model', description: 'latest, base (no adapter) or a model folder name', type: 'string', required: true, autocomplete: 'model' },
    { name: 'effort', description: 'reasoning effort (default low)', type: 'string', choices: REASONING_EFFORTS },
    { name: 'prompt', description: 'what to ask', type: 'text', required: true },
  ],
  async run(ctx, args) {
    const model = String(args.model);
    const prompt = String(args.prompt ?? '').trim();
    if (!isSafeModelName(model)) throw new InvalidInput('a model is named by its folder name (or latest, or base), not a path');
    if (!prompt) throw new InvalidInput('the prompt is empty: /ask latest <what to ask>');
    if (prompt.length > MAX_PROMPT_CHARS) throw new InvalidInput(`the prompt is ${prompt.length} characters; at most ${MAX_PROMPT_CHARS}`);
    await ctx.bot.asks.take(ctx.user, ctx.bot.config.asksPerMinute);
    const job = await ctx.bot.asks.add({
      model,
      messages: [{ role: 'user', content: prompt }],
      reasoningEffort: (args.effort as 'low' | 'medium' | 'high' | undefined) ?? 'low',
      requestedBy: { id: ctx.user.id, name: ctx.user.name, platform: ctx.user.platform },
      origin: { platform: ctx.surface.platform, channelId: ctx.channelId },
    });
    const quoted = prompt.length > 80 ? `${prompt.slice(0, 79)}…` : prompt;
    const header = `💬 **${model}** · ${ctx.user.name} asked: ${quoted}`;
    const training = ctx.bot.config.inferenceDuringTraining === 'wait' ? (await ctx.bot.queue.pending()).find((j) => j.state === 'active') : undefined;
    const shown = `${header}\n${training ? `⏳ waiting for the GPU: training job ${training.id} is running (INFERENCE_DURING_TRAINING=wait)` : '…'}`;
    const ref = await ctx.reply(shown);
    void ctx.bot.asks.follow(job.id!, ctx.surface, ref, header, shown, ctx.bot.config.progressEditIntervalMs);
  },
});
