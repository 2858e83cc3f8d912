/** /help: every command with its usage, one line each; grouped subcommands (the profiles) share one line. */
import { defineCommand, usage } from '../src/command-kit.ts';

export default defineCommand({
  name: 'help',
  description: 'List the commands',
  async run(ctx) {
    const lines = ['**Commands**'];
    for (const command of ctx.bot.commands.commands.values()) {
      if (!command.subcommands) {
        lines.push(`\`${usage(command)}\` · ${command.description}`);
        continue;
      }
      const shown = new Set<string>();
      for (const s of command.subcommands) {
        if (!s.group) {
          lines.push(`\`${usage(command, s)}\` · ${s.description}`);
          continue;
        }
        if (shown.has(s.group)) continue;
        shown.add(s.group);
        const members = command.subcommands.filter((m) => m.group === s.group);
        lines.push(`\`/${command.name} <${s.group}> ${s.options.map((o) => `[${o.name}=…]`).join(' ')}\` · ${command.description}`);
        for (const m of members) lines.push(`   ${m.name}: ${m.description}`);
      }
    }
    await ctx.replyPrivate(lines.join('\n'));
  },
});
