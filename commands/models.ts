/** /models list and /models info: the trained adapters in models/, their bands and facts, and which one is latest. */
import { defineCommand } from '../src/command-kit.ts';
import { modelInfo, modelList } from '../src/format.ts';

export default defineCommand({
  name: 'models',
  description: 'List the trained models, or show one',
  subcommandLabel: 'action',
  subcommands: [
    {
      name: 'list',
      description: 'every model, newest first, with its final loss, band and rank',
      options: [],
      async run(ctx) {
        await ctx.reply(modelList(await ctx.bot.models.list()));
      },
    },
    {
      name: 'info',
      description: 'every fact of one model from its training_info.txt, and its size on disk',
      options: [{ name: 'name', description: 'a model folder name, or latest', type: 'string', required: true, autocomplete: 'model' }],
      async run(ctx, args) {
        const model = await ctx.bot.models.find(String(args.name));
        await ctx.reply(modelInfo(model, await ctx.bot.models.size(model.name)));
      },
    },
  ],
});
