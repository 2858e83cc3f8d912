/**
 * The console adapter: a shell you type slash commands into, or pipe a script to. Lines are run one after another;
 * `/wait` in a script waits for what the lines before it started. On a terminal a message that is still the last
 * thing printed rewrites itself in place; otherwise (and on a pipe) an edit prints only the lines that changed, and a
 * pipe's output reads as a transcript: each line, then what it printed, an answer once it is complete.
 */
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import type { BotServices } from '../bot/bot.ts';
import type { CommandContext } from '../bot/command-kit.ts';
import type { ChatSurface, MessageRef } from '../bot/surface.ts';
import { PLATFORM_LIMITS } from './limits.ts';
import { renderQuotes, safeOutput } from '../bot/user-text.ts';

export type ConsoleEnd = 'eof' | 'interrupt';

export interface ConsoleOptions {
  bot: BotServices;
  input: Readable;
  output: Writable;
  /** Rewrite status lines in place (a terminal). */
  tty: boolean;
  /** Print each line read before running it: input that no terminal echoed (a script), so the output reads as a transcript. */
  echo?: boolean;
  user: string;
}

const CHANNEL = 'console';
/** A line of a script that waits until every job and ask it started has ended (the console's own; not a command). */
export const WAIT = '/wait';
/** Markdown the core uses, shown plainly in a terminal. */
const markup = (text: string) => text.replace(/\*\*(.+?)\*\*/g, '$1').replace(/`([^`]*)`/g, '$1');
/** What the terminal shows: quoted words as typed, no markup, and no control character but line breaks. */
const plain = (text: string) => safeOutput(renderQuotes(text, (quoted) => quoted, markup));

export class ConsoleChat implements ChatSurface {
  readonly platform = 'console';
  readonly editIntervalMs: number;
  readonly minEditIntervalMs = 0;
  /** On a pipe every edit prints anew: an answer is shown once, complete. */
  readonly showsPartialAnswers: boolean;
  private nextId = 1;
  /**
   * Message ids are stored with jobs in Redis: a console started later must not take an earlier one's id for its own
   * message. A message of an earlier console (a resumed job) is printed anew when it changes.
   */
  private readonly session = randomBytes(3).toString('hex');
  /** On a pipe, messages that say nothing yet ("…"): printed whole at their first edit. */
  private readonly unsaid = new Set<string>();
  /** The message printed last (nothing after it), which a terminal can rewrite in place. */
  private lastRef: string | null = null;
  /** What each message shows now, line by line. */
  private readonly shown = new Map<string, string[]>();
  /** How many lines the last printed message took on the terminal. */
  private lastHeight = 0;
  private interruptHandler: (() => void) | null = null;

  constructor(private readonly options: ConsoleOptions) {
    this.editIntervalMs = options.tty
      ? PLATFORM_LIMITS.console.ttyEditIntervalMs
      : PLATFORM_LIMITS.console.editIntervalMs;
    this.showsPartialAnswers = options.tty;
  }

  async post(channelId: string, text: string): Promise<MessageRef> {
    const id = `${this.session}.${this.nextId++}`;
    const lines = plain(text).split('\n');
    this.shown.set(id, lines);
    if (!this.options.tty && lines.at(-1) === '…') this.unsaid.add(id);
    else this.print(id, lines);
    return { channelId, id };
  }

  async edit(ref: MessageRef, text: string): Promise<void> {
    const before = this.shown.get(ref.id) ?? [];
    const lines = plain(text).split('\n');
    this.shown.set(ref.id, lines);
    if (this.options.tty && this.lastRef === ref.id) {
      this.options.output.write(`\x1b[${this.lastHeight}A${lines.map((l) => `\r\x1b[2K${l}\n`).join('')}`);
      this.lastHeight = lines.length;
      return;
    }
    // On a pipe: the lines that changed (a job's status line), or the whole message when it says something at last
    // or several of its lines changed (an answer and its footer), so it reads whole with its header.
    const changed = lines.filter((line, i) => line !== before[i]);
    if (this.unsaid.delete(ref.id) || changed.length > 1) this.print(ref.id, lines);
    else if (changed.length) this.print(ref.id, changed);
  }

  private print(id: string, lines: string[]): void {
    this.options.output.write(`${lines.join('\n')}\n`);
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
    if (line === WAIT) {
      // a script's pause: the next line runs once every job and ask followed here has ended
      await Promise.all([bot.watcher.settled(), bot.asks.settled()]);
      return;
    }
    if (this.options.echo) this.write(safeOutput(line));
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
      if (await bot.chats.get('console', CHANNEL).catch(() => null)) await bot.commands.threadTurn(ctx, CHANNEL, line);
      else this.write('Commands start with / (try /help).');
      return;
    }
    const [, name = '', rest = ''] = /^\/(\S*)\s*([\s\S]*)$/.exec(line) ?? [];
    await bot.commands.dispatchText(name, rest, ctx);
  }

  private write(text: string): void {
    this.options.output.write(`${text}\n`);
    this.lastRef = null;
  }
}
