/** /ask <model> <prompt>: an answer from an adapter (latest, base, or a model's name), streamed into one message. */
import { askAndStream, checkPrompt, effortSlip, type Effort } from '../ask-flow.ts';
import { defineCommand, quote } from '../command-kit.ts';
import { InvalidInput } from '../../shared/errors.ts';
import { REASONING_EFFORTS } from '../../shared/jobs.ts';
import { isSafeModelName } from '../../shared/model-names.ts';

export default defineCommand({
  name: 'ask',
  description: 'Ask a trained model (latest, base, or a model name)',
  permission: 'ask',
  options: [
    {
      name: 'model',
      description: 'latest, base (no adapter) or a model folder name',
      type: 'string',
      required: true,
      autocomplete: 'model',
    },
    { name: 'effort', description: 'reasoning effort (default low)', type: 'string', choices: REASONING_EFFORTS },
    { name: 'prompt', description: 'what to ask', type: 'text', required: true },
  ],
  async run(ctx, args) {
    const model = String(args.model);
    if (!isSafeModelName(model))
      throw new InvalidInput('a model is named by its folder name (or latest, or base), not a path');
    const prompt = checkPrompt(String(args.prompt ?? ''));
    const effort = args.effort as Effort | undefined;
    const quoted = prompt.length > 80 ? `${prompt.slice(0, 79)}…` : prompt;
    await askAndStream(
      ctx,
      model,
      [{ role: 'user', content: prompt }],
      effort ?? 'low',
      `💬 **${model}** · ${ctx.user.name} asked: ${quoted}`,
    );
    // `/ask latest ultra hi`: ultra is no effort, so it began the prompt; answered all the same, and the caller told
    const slip = effort === undefined ? effortSlip(prompt) : null;
    if (slip)
      await ctx.replyPrivate(
        `ℹ️ ${quote(slip, 20)} is not a reasoning effort (${REASONING_EFFORTS.join(', ')}): it was read as the start of your prompt`,
      );
  },
});
