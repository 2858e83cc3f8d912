/**
 * /chat [model]: a conversation with an adapter, where every message is a turn. The console holds one per session
 * (type without a leading /); its history lives in Redis, trimmed to the model's context.
 */
import { defineCommand } from '../command-kit.ts';
import { InvalidInput, UserError } from '../../shared/errors.ts';
import { isSafeModelName } from '../../shared/model-names.ts';

export default defineCommand({
  name: 'chat',
  description: 'Talk with a trained model, every message a turn',
  permission: 'ask',
  uses: ['threads'],
  options: [
    {
      name: 'model',
      description: 'latest (default), base or a model folder name',
      type: 'string',
      autocomplete: 'model',
    },
  ],
  async run(ctx, args) {
    const model = String(args.model ?? 'latest');
    if (!isSafeModelName(model))
      throw new InvalidInput('a model is named by its folder name (or latest, or base), not a path');
    await ctx.bot.models.forAsk(model); // a name no runner could answer with is refused now, not at the first turn
    if (!ctx.thread)
      throw new UserError(
        `/chat needs threads, which the ${ctx.surface.platform} adapter does not open yet; /ask answers one question`,
      );
    const threadId = await ctx.thread.open(`Chat with ${model}`);
    await ctx.bot.chats.open(ctx.surface.platform, threadId, model, ctx.user.name, ctx.channelId);
    await ctx.thread.say(threadId, `🧵 chatting with **${model}**: ${ctx.thread.howToTalk}`);
  },
});
