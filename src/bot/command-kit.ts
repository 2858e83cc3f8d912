/**
 * Commands are written once, for every platform: a declarative definition (options with types and choices) and a
 * handler. This module turns a platform's input (a line of text, or already-named option values) into validated
 * arguments, and gives a handler what it may do (reply, reply privately, follow a job).
 */
import { InvalidInput } from '../shared/errors.ts';
import { quoteUser } from './user-text.ts';
import type { Caller, Permission } from '../shared/access.ts';
import type { Asks } from './asks.ts';
import type { ChatStore } from './conversations.ts';
import type { Deliveries } from './deliveries.ts';
import type { JobWatcher } from './job-watcher.ts';
import type { TrainQueue } from './queue.ts';
import type { ChatSurface, MessageRef } from './surface.ts';
import type { AccessPolicy } from '../shared/access.ts';
import type { Config } from '../shared/config.ts';
import type { ModelRegistry } from '../shared/model-registry.ts';
import type { RunnerRegistry } from '../shared/runner-registry.ts';

export type OptionType = 'string' | 'integer' | 'text';

export interface OptionSpec {
  name: string;
  description: string;
  type: OptionType;
  required?: boolean;
  choices?: readonly string[];
  min?: number;
  max?: number;
  /** Platforms that can suggest values as the user types (Discord) offer these. */
  autocomplete?: 'model';
  /** In typed text only as `name=value`: a stray word never fills it (rarely used options after free-form ones). */
  named?: boolean;
}

export type Args = Record<string, string | number | undefined>;

export interface Handler {
  name: string;
  description: string;
  /** Handlers of one group share a usage line in /help (the training profiles). */
  group?: string;
  /** Who may run it (src/shared/access.ts); everyone when unset. /help shows a caller only what they may run. */
  permission?: Permission;
  /** Its answer is for the caller only (platforms that must choose before answering, like Discord, defer privately). */
  private?: boolean;
  options: readonly OptionSpec[];
  run(ctx: CommandContext, args: Args): Promise<void>;
}

/**
 * What a command uses of a platform beyond posting and editing messages: `files` (it attaches a loss curve),
 * `threads` (it reads the messages of a thread it opened). A platform's app manifest asks for the rights these need.
 */
export type Capability = 'files' | 'threads';

export interface CommandSpec {
  name: string;
  description: string;
  uses?: readonly Capability[];
  /** What the first word picks when the command has subcommands ("profile or action"). */
  subcommandLabel?: string;
  subcommands?: readonly Handler[];
  options?: readonly OptionSpec[];
  permission?: Permission;
  private?: boolean;
  run?(ctx: CommandContext, args: Args): Promise<void>;
}

export function defineCommand(spec: CommandSpec): CommandSpec {
  return spec;
}

/** A command without subcommands, seen as its own single handler. */
export function rootHandler(command: CommandSpec): Handler {
  return {
    name: command.name,
    description: command.description,
    options: command.options ?? [],
    permission: command.permission,
    private: command.private,
    run: command.run!,
  };
}

/** What a command's handler may use: the bot's parts, and the commands there are (for /help). */
export interface CommandServices {
  config: Config;
  access: AccessPolicy;
  queue: TrainQueue;
  models: ModelRegistry;
  watcher: JobWatcher;
  asks: Asks;
  chats: ChatStore;
  commands: { readonly commands: ReadonlyMap<string, CommandSpec> };
  /** Which platform requests were taken already: a re-delivered one is ignored. */
  deliveries: Deliveries;
  /** The runners' heartbeats: /runners, and where a job may ask to run. */
  runners: RunnerRegistry;
}

export interface CommandContext {
  user: Caller;
  channelId: string;
  surface: ChatSurface;
  bot: CommandServices;
  /** A message in the channel that everyone sees. */
  reply(text: string): Promise<MessageRef>;
  /** A message only the caller sees (Discord ephemeral, Slack ephemeral, the console prints it). */
  replyPrivate(text: string): Promise<void>;
  /** Threads for /chat, where the platform's adapter has them. */
  thread?: {
    /** Opens a thread here; returns its id. */
    open(title: string): Promise<string>;
    say(threadId: string, text: string): Promise<void>;
    /** One line telling people how to talk in it. */
    howToTalk: string;
  };
}

/** Splits a command line into words; "double" or 'single' quotes keep spaces. */
export function tokenize(text: string): string[] {
  return wordsAt(text).map((w) => w.word);
}

/** The words of a line, each with where it starts (free text is the line from there on, as typed). */
function wordsAt(text: string): { word: string; at: number }[] {
  const words: { word: string; at: number }[] = [];
  const re = /"([^"]*)"|'([^']*)'|(\S+)/g;
  for (let m = re.exec(text); m; m = re.exec(text)) words.push({ word: m[1] ?? m[2] ?? m[3]!, at: m.index });
  return words;
}

export function usage(command: CommandSpec, handler?: Handler): string {
  const opts = (handler?.options ?? command.options ?? []).map((o) =>
    o.required ? `<${o.name}>` : o.named ? `[${o.name}=…]` : `[${o.name}]`,
  );
  const sub = handler && command.subcommands ? ` ${handler.name}` : '';
  return `/${command.name}${sub}${opts.length ? ` ${opts.join(' ')}` : ''}`;
}

/** "a profile", "an action". */
const withArticle = (noun: string) => `${/^[aeiou]/i.test(noun) ? 'an' : 'a'} ${noun}`;

/**
 * The handler of `command` that `sub` names (the first word typed, or the subcommand a platform named); one line that
 * says what there is to choose from when there is none.
 */
export function findHandler(command: CommandSpec, sub: string | undefined): Handler {
  if (!command.subcommands) return rootHandler(command);
  const label = command.subcommandLabel ?? 'subcommand';
  if (sub === undefined || sub === '')
    throw new InvalidInput(`/${command.name} needs ${withArticle(label)}; ${choices(command)}`);
  const found = command.subcommands.find((s) => s.name === sub);
  if (!found) throw new InvalidInput(`unknown ${label} ${quote(sub)}; ${choices(command)}`);
  return found;
}

const CONTROL = /[\u0000-\u001f\u007f]/;

/** Finds the handler a line of text asks for and validates its arguments; throws InvalidInput with one line. */
export function parseText(command: CommandSpec, text: string): { handler: Handler; args: Args } {
  const at = wordsAt(text);
  const handler = findHandler(command, command.subcommands ? at.shift()?.word : undefined);
  const words = at.map((w) => w.word);
  const raw: Record<string, string> = {};
  /** Which option each word went to, by where the word starts: a control character is blamed on its option. */
  const filled: { at: number; option: string }[] = [];
  const positional = handler.options;
  let next = 0;
  for (let i = 0; i < words.length; i++) {
    const word = words[i]!;
    const named = /^--([A-Za-z_][\w-]*)$/.exec(word) ?? /^([A-Za-z_][\w-]*)=/.exec(word);
    if (named) {
      const name = named[1]!;
      const option = handler.options.find((o) => o.name === name);
      if (!option) {
        const takes = handler.options.map((o) => o.name);
        throw new InvalidInput(
          `unknown option ${quote(name)}; ${usage(command, handler)} takes ${takes.length ? takes.join(', ') : 'no options'}`,
        );
      }
      if (raw[name] !== undefined) throw new InvalidInput(`${name} is given twice; give each option once`);
      filled.push({ at: at[i]!.at, option: name });
      const value = word.startsWith('--') ? words[++i] : word.slice(name.length + 1);
      if (value === undefined || value === '') throw new InvalidInput(`${name} needs a value`);
      raw[name] = value;
      continue;
    }
    // A word fills the next free option; an integer option only takes a word that looks like a number, and an option
    // with choices before a free-text one only takes one of its choices (else the word begins the text).
    const hasText = positional.some((o) => o.type === 'text');
    const skips = (o: OptionSpec) =>
      raw[o.name] !== undefined ||
      o.named === true ||
      (o.type === 'integer' && !/^[+-]?[\d.]+$/.test(word)) ||
      (hasText && o.type === 'string' && o.choices !== undefined && !o.choices.includes(word));
    while (next < positional.length && skips(positional[next]!)) next++;
    const option = positional[next];
    if (!option) throw new InvalidInput(`unexpected ${quote(word)}; usage: ${usage(command, handler)}`);
    filled.push({ at: at[i]!.at, option: option.name });
    // free text is the rest of the line as typed (quotes and spacing kept), unless it is one quoted string
    raw[option.name] = option.type === 'text' && i < words.length - 1 ? text.slice(at[i]!.at).trim() : word;
    if (option.type === 'text') break;
    next++;
  }
  // Checked on the line as received: a control character between or after the words (a trailing newline) is refused
  // like one inside a word, not trimmed away.
  const control = text.search(CONTROL);
  if (control >= 0) {
    const blamed = filled.filter((f) => f.at <= control).pop();
    throw new InvalidInput(`${blamed ? blamed.option : 'the command'} contains control characters`);
  }
  return { handler, args: validateArgs(handler, raw) };
}

/**
 * Checks option values (from text, or from a platform that names them) against the handler's options. A value is
 * checked as received: an empty one is refused (not taken for "not given"), a control character anywhere in it too.
 */
export function validateArgs(handler: Handler, raw: Record<string, unknown>): Args {
  const args: Args = {};
  for (const name of Object.keys(raw)) {
    if (!handler.options.some((o) => o.name === name)) throw new InvalidInput(`unknown option ${quote(name)}`);
  }
  for (const o of handler.options) {
    const value = raw[o.name];
    if (value === undefined || value === null) {
      if (o.required) throw new InvalidInput(`${o.name} is required: ${o.description}`);
      continue;
    }
    const received = String(value);
    if (CONTROL.test(received)) throw new InvalidInput(`${o.name} contains control characters`);
    const text = received.trim();
    // blanks in free text (a prompt of spaces) are the command's to explain; any other option needs a value
    if (text === '' && (received === '' || o.type !== 'text')) throw new InvalidInput(`${o.name} needs a value`);
    if (o.type === 'integer') {
      const n = /^[+]?\d{1,9}$/.test(text) ? Number(text) : NaN;
      const range = o.min !== undefined && o.max !== undefined ? ` from ${o.min} to ${o.max}` : '';
      if (!Number.isInteger(n) || (o.min !== undefined && n < o.min) || (o.max !== undefined && n > o.max)) {
        throw new InvalidInput(`${o.name} must be a whole number${range}`);
      }
      args[o.name] = n;
    } else {
      if (o.choices && !o.choices.includes(text)) {
        throw new InvalidInput(`unknown ${o.name} ${quote(text)}; choose one of ${o.choices.join(', ')}`);
      }
      args[o.name] = text;
    }
  }
  return args;
}

/** "choose one of a, b, c" — a group (the profiles) first, then the other subcommands. */
function choices(command: CommandSpec): string {
  const subs = command.subcommands ?? [];
  const grouped = subs.filter((s) => s.group).map((s) => s.name);
  const others = subs.filter((s) => !s.group).map((s) => s.name);
  if (!grouped.length) return `choose one of ${others.join(', ')}`;
  return `choose one of ${grouped.join(', ')}${others.length ? ` (or ${others.join(', ')})` : ''}`;
}

/** A user's word quoted back in 'single quotes', as typed (src/bot/user-text.ts): the platform escapes its markup. */
export const quote = (s: string, n = 40) => `'${quoteUser(s, n)}'`;
