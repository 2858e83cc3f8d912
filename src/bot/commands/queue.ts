/** /queue: the training jobs that are running and waiting, in order. */
import { defineCommand } from '../command-kit.ts';
import { jobStatus } from '../format.ts';

export default defineCommand({
  name: 'queue',
  description: 'Show the training jobs running and waiting',
  async run(ctx) {
    const jobs = await ctx.bot.queue.pending();
    if (jobs.length === 0) {
      await ctx.reply('The queue is empty. `/train quick_test` starts a run.');
      return;
    }
    const waiting = jobs.filter((j) => j.state === 'waiting').length;
    await ctx.reply(
      [`**Queue**: ${jobs.length - waiting} running, ${waiting} waiting`, ...jobs.map(jobStatus)].join('\n'),
    );
  },
});
