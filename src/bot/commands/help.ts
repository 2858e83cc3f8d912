/**
 * /help: the commands the caller may run here, with their usage, one line each; grouped subcommands (the profiles)
 * share one line.
 */
import { defineCommand, usage, type CommandContext, type Handler } from '../command-kit.ts';

const mayRun = (ctx: CommandContext, h: Pick<Handler, 'permission'>) =>
  !h.permission || ctx.bot.access.allows(h.permission, ctx.user, ctx.channelId);

export default defineCommand({
  name: 'help',
  description: 'List the commands you may run',
  private: true,
  async run(ctx) {
    const lines = ['**Commands**'];
    for (const command of ctx.bot.commands.commands.values()) {
      if (!command.subcommands) {
        if (!mayRun(ctx, command)) continue;
        lines.push(`\`${usage(command)}\` · ${command.description}`);
        continue;
      }
      const shown = new Set<string>();
      for (const s of command.subcommands.filter((h) => mayRun(ctx, h))) {
        if (!s.group) {
          lines.push(`\`${usage(command, s)}\` · ${s.description}`);
          continue;
        }
        if (shown.has(s.group)) continue;
        shown.add(s.group);
        const members = command.subcommands.filter((m) => m.group === s.group && mayRun(ctx, m));
        lines.push(
          `\`/${command.name} <${s.group}> ${s.options.map((o) => `[${o.name}=…]`).join(' ')}\` · ${command.description}`,
        );
        for (const m of members) lines.push(`   ${m.name}: ${m.description}`);
      }
    }
    await ctx.replyPrivate(lines.join('\n'));
  },
});
