/**
 * Loads one module per command from commands/, checks each one's shape (naming the file that is wrong), and
 * dispatches: unknown command → a short hint; the handler runs in one try/catch; a UserError's line goes to the
 * caller privately, anything else goes to the log and the caller gets one line with a reference.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { randomBytes } from 'node:crypto';
import { PERMISSION_SETTINGS, type Permission } from '../shared/access.ts';
import { conversationTurn } from './ask-flow.ts';
import {
  findHandler,
  parseText,
  usage,
  validateArgs,
  type Args,
  type CommandContext,
  type CommandSpec,
  type Handler,
} from './command-kit.ts';
import { UserError } from '../shared/errors.ts';
import { quoteUser } from './user-text.ts';
import { logger } from '../shared/log.ts';

const log = logger('commands');

export class CommandShapeError extends Error {
  override name = 'CommandShapeError';
}

export function checkShape(file: string, value: unknown): CommandSpec {
  const c = value as Partial<CommandSpec> | undefined;
  const problems: string[] = [];
  if (!c || typeof c !== 'object') problems.push('has no default export from defineCommand()');
  else {
    if (typeof c.name !== 'string' || !/^[a-z][a-z0-9_-]{0,31}$/.test(c.name))
      problems.push('name must be 1-32 lowercase letters, digits, - or _');
    if (typeof c.description !== 'string' || c.description.length === 0 || c.description.length > 100)
      problems.push('description must be 1-100 characters');
    if (!c.subcommands && typeof c.run !== 'function') problems.push('needs run() or subcommands');
    for (const s of c.subcommands ?? [])
      if (typeof s.run !== 'function') problems.push(`subcommand ${s.name} needs run()`);
  }
  if (problems.length) throw new CommandShapeError(`${file}: ${problems.join('; ')}`);
  return c as CommandSpec;
}

export class CommandRegistry {
  private constructor(readonly commands: ReadonlyMap<string, CommandSpec>) {}

  static of(commands: CommandSpec[]): CommandRegistry {
    return new CommandRegistry(new Map(commands.map((c) => [c.name, c])));
  }

  static async load(dir: string): Promise<CommandRegistry> {
    const files = (await readdir(dir)).filter((f) => /\.(ts|js)$/.test(f) && !f.endsWith('.d.ts')).sort();
    const commands: CommandSpec[] = [];
    for (const file of files) {
      const mod = await import(pathToFileURL(join(dir, file)).href);
      const command = checkShape(`src/bot/commands/${file}`, mod.default);
      if (commands.some((c) => c.name === command.name))
        throw new CommandShapeError(`src/bot/commands/${file}: /${command.name} is defined twice`);
      commands.push(command);
    }
    return new CommandRegistry(new Map(commands.map((c) => [c.name, c])));
  }

  /** Runs `/name rest-of-line` typed as text (console, Slack). */
  async dispatchText(name: string, text: string, ctx: CommandContext): Promise<void> {
    const command = this.commands.get(name);
    if (!command) {
      await ctx.replyPrivate(`unknown command /${quoteUser(name, 32)}; /help lists the commands`);
      return;
    }
    await this.run(command, ctx, () => parseText(command, text));
  }

  /** Runs a command whose options the platform already named (Discord). */
  async dispatchNamed(
    name: string,
    sub: string | undefined,
    raw: Record<string, unknown>,
    ctx: CommandContext,
  ): Promise<void> {
    const command = this.commands.get(name);
    if (!command) {
      log.warn(`unknown command /${name} (registered by an older version?)`);
      await ctx.replyPrivate(`unknown command /${quoteUser(name, 32)}; /help lists the commands`);
      return;
    }
    await this.run(command, ctx, () => {
      const handler = findHandler(command, sub);
      return { handler, args: validateArgs(handler, raw) };
    });
  }

  private run(command: CommandSpec, ctx: CommandContext, parse: () => { handler: Handler; args: Args }): Promise<void> {
    return this.guarded(command.name, ctx, async () => {
      const { handler, args } = parse();
      this.check(handler.permission, ctx, usage(command, handler).split(' [')[0]!.split(' <')[0]!);
      await handler.run(ctx, args);
    });
  }

  /**
   * A message in a /chat thread, as every platform hands it over: the permission of /chat, the same answers to errors
   * as a command, then the conversation's next turn.
   */
  threadTurn(ctx: CommandContext, threadId: string, text: string): Promise<void> {
    return this.guarded('chat', ctx, async () => {
      this.check(this.commands.get('chat')?.permission, ctx, '/chat');
      await conversationTurn(ctx, threadId, text);
    });
  }

  private check(permission: Permission | undefined, ctx: CommandContext, what: string): void {
    if (permission && !ctx.bot.access.allows(permission, ctx.user, ctx.channelId)) {
      throw new UserError(
        `you may not run ${what} here (${PERMISSION_SETTINGS[permission]}); ask whoever runs the bot`,
      );
    }
  }

  /** Runs `action`: a UserError's line goes to the caller privately; anything else to the log, with a reference. */
  private async guarded(name: string, ctx: CommandContext, action: () => Promise<void>): Promise<void> {
    try {
      await action();
    } catch (e) {
      if (e instanceof UserError) {
        await ctx.replyPrivate(`⚠️ ${e.message}`).catch((err) => log.warn('could not reply', err));
        return;
      }
      const ref = randomBytes(3).toString('hex');
      log.error(`/${name} failed for ${ctx.user.name} (ref ${ref})`, e);
      await ctx
        .replyPrivate(`💥 /${name} failed unexpectedly (ref ${ref}); the bot's log has the details`)
        .catch(() => undefined);
    }
  }
}
