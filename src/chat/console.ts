/**
 * The console adapter: a shell you type slash commands into, or pipe a script to. Lines are run one after another.
 * On a terminal a job's status line rewrites itself in place; on a pipe every edit is printed as a new line.
 */
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import type { BotServices } from '../bot.ts';
import type { ChatSurface, CommandContext, MessageRef } from '../command-kit.ts';
import { PLATFORM_LIMITS } from './limits.ts';

export type ConsoleEnd = 'eof' | 'interrupt';

export interface ConsoleOptions {
  bot: BotServices;
  input: Readable;
  output: Writable;
  /** Rewrite status lines in place (a terminal). */
  tty: boolean;
  user: string;
}

const CHANNEL = 'console';
/** Markdown the core uses, shown plainly in a terminal. */
const plain = (text: string) => text.replace(/\*\*(.+?)\*\*/g, '$1').replace(/`([^`]*)`/g, '$1');

export class ConsoleChat implements ChatSurface {
  readonly platform = 'console';
  readonly editIntervalMs: number;
  private nextId = 1;
  /** The message on the last line of the terminal, which can be rewritten in place. */
  private lastRef: string | null = null;
  private interruptHandler: (() => void) | null = null;

  constructor(private readonly options: ConsoleOptions) {
    this.editIntervalMs = options.tty ? PLATFORM_LIMITS.console.ttyEditIntervalMs : PLATFORM_LIMITS.console.editIntervalMs;
  }

  async post(channelId: string, text: string): Promise<MessageRef> {
    const id = String(this.nextId++);
    this.write(plain(text));
    this.lastRef = text.includes('\n') ? null : id;
    return { channelId, id };
  }

  async edit(ref: MessageRef, text: string): Promise<void> {
    const single = !text.includes('\n');
    if (this.options.tty && single && this.lastRef === ref.id) {
      this.options.output.write(`\x1b[1A\r\x1b[2K${plain(text)}\n`);
      return;
    }
    this.write(plain(text));
    this.lastRef = single ? ref.id : null;
  }

  /** Reads commands until the end of input or Ctrl-C; says which. */
  run(): Promise<ConsoleEnd> {
    const { input, bot, user } = this.options;
    const rl = createInterface({ input, terminal: false });
    return new Promise((resolve) => {
      let chain = Promise.resolve();
      let ended = false;
      const end = (how: ConsoleEnd) => {
        if (ended) return;
        ended = true;
        rl.close();
        void chain.then(() => resolve(how));
      };
      this.interruptHandler = () => end('interrupt');
      rl.on('line', (line) => {
        // on a terminal the typed line was echoed below the last message: that message can no longer be rewritten
        this.lastRef = null;
        chain = chain.then(() => this.handleLine(line.trim(), bot, user));
      });
      rl.on('close', () => end('eof'));
    });
  }

  /** Ctrl-C: stop reading; main() cancels what this console queued. */
  interrupt(): void {
    this.interruptHandler?.();
  }

  private async handleLine(line: string, bot: BotServices, user: string): Promise<void> {
    if (!line || line.startsWith('#')) return;
    if (!line.startsWith('/')) {
      this.write('Commands start with / (try /help).');
      return;
    }
    const [, name = '', rest = ''] = /^\/(\S*)\s*([\s\S]*)$/.exec(line) ?? [];
    const ctx: CommandContext = {
      user: { id: `console:${user}`, name: user },
      channelId: CHANNEL,
      surface: this,
      bot,
      reply: (text) => this.post(CHANNEL, text),
      replyPrivate: async (text) => void (await this.post(CHANNEL, text)),
    };
    await bot.commands.dispatchText(name, rest, ctx);
  }

  private write(text: string): void {
    this.options.output.write(text + '\n');
  }
}
