/** /runners: every runner worker (one per GPU) with its device's memory and its job, and those that went silent. */
import { defineCommand } from '../command-kit.ts';
import { runnersTable } from '../format.ts';

export default defineCommand({
  name: 'runners',
  description: 'Show the GPU runners: memory, the job each runs, and hosts that went silent',
  async run(ctx) {
    const [runners, modelsId] = await Promise.all([ctx.bot.runners.list(), ctx.bot.models.folderId()]);
    await ctx.reply(runnersTable(runners, Date.now(), modelsId));
  },
});
