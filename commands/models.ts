/** /models list: the trained adapters in models/, newest first, with their loss band and which one is latest. */
import { defineCommand } from '../src/command-kit.ts';
import { modelList } from '../src/format.ts';

export default defineCommand({
  name: 'models',
  description: 'List the trained models',
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
  ],
});
