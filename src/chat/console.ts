/**
 * The console adapter: a shell you type slash commands into, or pipe a script to. Lines are run one after another.
 * On a terminal a message that is still the last thing printed rewrites itself in place; otherwise (and on a pipe)
 * an edit prints only the lines that changed.
 */
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import type { BotServices } from '../bot.ts';
import type { ChatSurface, CommandContext, MessageRef } from '../command-kit.ts';
import { chatTurn } from '../ask-flow.ts';
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
  readonly minEditIntervalMs = 0;
  private nextId = 1;
  /** The message printed last (nothing after it), which a terminal can rewrite in place. */
  private lastRef: string | null = null;
  /** What each message shows now, line by line. */
  private readonly shown = new Map<string, string[]>();
  /** How many lines the last printed message took on the terminal. */
  private lastHeight = 0;
  private interruptHandler: (() => void) | null = null;

  constructor(private readonly options: ConsoleOptions) {
    this.editIntervalMs = options.tty ? PLATFORM_LIMITS.console.ttyEditIntervalMs : PLATFORM_LIMITS.console.editIntervalMs;
  }

  async post(channelId: string, text: string): Promise<MessageRef> {
    const id = String(this.nextId++);
    const lines = plain(text).split('\n');
    this.shown.set(id, lines);
    this.print(id, lines);
    return { channelId, id };
  }

  async edit(ref: MessageRef, text: string): Promise<void> {
    const before = this.shown.get(ref.id) ?? [];
    const lines = plain(text).split('\n');
    this.shown.set(ref.id, lines);
    if (this.options.tty && this.lastRef === ref.id) {
      this.options.output.write(`\x1b[${this.lastHeight}A` + lines.map((l) => `\r\x1b[2K${l}\n`).join(''));
      this.lastHeight = lines.length;
      return;
    }
    const changed = lines.filter((line, i) => line !== before[i]);
    if (changed.length) this.print(ref.id, changed);
  }

  private print(id: string, lines: string[]): void {
    this.options.output.write(lines.join('\n') + '\n');
    this.lastRef = id;
    this.lastHeight = lines.length;
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
    const ctx: CommandContext = {
      user: { id: user, name: user, platform: 'console', roles: [] },
      channelId: CHANNEL,
      surface: this,
      bot,
      reply: (text) => this.post(CHANNEL, text),
      replyPrivate: async (text) => void (await this.post(CHANNEL, text)),
      // the console's thread is the session itself: lines without a leading / are its turns
      thread: {
        open: async () => CHANNEL,
        say: async (_thread, text) => void (await this.post(CHANNEL, text)),
        howToTalk: 'type a message (no leading /) for each turn; /chat again starts over',
      },
    };
    if (!line.startsWith('/')) {
      if (await bot.chats.get('console', CHANNEL).catch(() => null)) await bot.commands.chatTurn(ctx, () => chatTurn(ctx, CHANNEL, line));
      else this.write('Commands start with / (try /help).');
      return;
    }
    const [, name = '', rest = ''] = /^\/(\S*)\s*([\s\S]*)$/.exec(line) ?? [];
    await bot.commands.dispatchText(name, rest, ctx);
  }

  private write(text: string): void {
    this.options.output.write(text + '\n');
    this.lastRef = null;
  }
}
