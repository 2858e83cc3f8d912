/**
 * The Slack adapter: the real Bolt app, in Socket Mode (default) or over HTTP with signed requests. Every slash
 * command is acknowledged first (Slack wants it within 3 s), then run; job messages are kept up to date with
 * chat.update (tier 3, well inside its limit at one edit per 1.5 s), and the loss curve goes up with files.uploadV2
 * in the job message's thread.
 */
import { App, HTTPReceiver, LogLevel, SocketModeReceiver } from '@slack/bolt';
import { resumeMessages, type BotServices } from '../../bot/bot.ts';
import type { CommandContext } from '../../bot/command-kit.ts';
import type { Attachment, ChatPlatform, MessageRef } from '../../bot/surface.ts';
import { UserError } from '../../shared/errors.ts';
import { logger } from '../../shared/log.ts';
import { PLATFORM_LIMITS } from '../limits.ts';
import { renderQuotes, safeOutput } from '../../bot/user-text.ts';

const log = logger('slack');
const LIMITS = PLATFORM_LIMITS.slack;
const GROUPS_CACHE_MS = 60_000;

export type SlackOptions = { bot: BotServices; botToken: string; apiUrl?: string } & (
  | { mode: 'socket'; appToken: string }
  | { mode: 'http'; signingSecret: string; port: number }
);

const escapeEntities = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/**
 * The core's text as Slack mrkdwn: &, < and > escaped (Slack reads <…> as a link or mention), the bot's own user
 * mentions kept, **bold** as *bold*, clipped to Slack's message size. A user's quoted word is shown as typed: its
 * entities escaped, no mention restored in it, and in a code span when it holds mrkdwn's *, _ or ~ (mrkdwn has no
 * backslash escapes; in code they are plain).
 */
export function toMrkdwn(text: string): string {
  const out = safeOutput(
    renderQuotes(
      text,
      (quoted) =>
        /[*_~]/.test(quoted) && !quoted.includes('`') ? `\`${escapeEntities(quoted)}\`` : escapeEntities(quoted),
      (markup) =>
        escapeEntities(markup)
          .replace(/&lt;@([UW][A-Z0-9]+)&gt;/g, '<@$1>')
          .replace(/\*\*(.+?)\*\*/g, '*$1*'),
    ),
  );
  return out.length > LIMITS.messageChars ? `${out.slice(0, LIMITS.messageChars - 1)}…` : out;
}

/**
 * What a user typed, from Slack's text: Slack sends `&`, `<` and `>` that a person typed as `&amp;`, `&lt;`, `&gt;`
 * (its own markup, such as `<@U123>`, stays as it is), so a prompt reaches the model as it was written.
 */
export function fromSlackText(text: string): string {
  return text.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
}

/** Slack's answer when the bot may not post in a channel, turned into a line the user can act on. */
function channelError(e: unknown): never {
  const code = (e as { data?: { error?: string } }).data?.error;
  if (code === 'not_in_channel' || code === 'channel_not_found' || code === 'is_archived') {
    throw new UserError('I cannot post in this channel: invite me (/invite @<bot name>) or use a channel I am in');
  }
  throw e;
}

export class SlackChat implements ChatPlatform {
  readonly platform = 'slack';
  readonly editIntervalMs = LIMITS.editIntervalMs;
  readonly minEditIntervalMs = LIMITS.minEditIntervalMs;
  readonly app: InstanceType<typeof App>;
  private readonly receiver: InstanceType<typeof SocketModeReceiver> | InstanceType<typeof HTTPReceiver>;
  private groupsCache: { at: number; members: Map<string, Set<string>> } | null = null;
  /** When the last chat.update calls went out: tier 3 is a budget for the whole workspace, not per message. */
  private readonly updates: number[] = [];

  constructor(private readonly options: SlackOptions) {
    const clientOptions = options.apiUrl ? { slackApiUrl: options.apiUrl } : {};
    this.receiver =
      options.mode === 'socket'
        ? new SocketModeReceiver({
            appToken: options.appToken,
            installerOptions: { clientOptions },
            logLevel: LogLevel.WARN,
          })
        : new HTTPReceiver({
            signingSecret: options.signingSecret,
            endpoints: '/slack/events',
            logLevel: LogLevel.WARN,
          });
    this.app = new App({ token: options.botToken, receiver: this.receiver, clientOptions, logLevel: LogLevel.WARN });
    for (const name of options.bot.commands.commands.keys()) {
      this.app.command(`/${name}`, async ({ command, ack, respond }) => {
        await ack(); // first, before any work
        // one command can arrive twice (a signed request replayed within its 5 minutes, a redelivery): it runs once
        if (command.trigger_id && !(await this.options.bot.deliveries.first(this.platform, command.trigger_id))) return;
        await this.run(name, command, (text) => respond({ response_type: 'ephemeral', text: toMrkdwn(text) }));
      });
    }
    // A message in a thread that holds a /chat conversation is its next turn.
    this.app.message(async ({ message }) => {
      const m = message as {
        subtype?: string;
        bot_id?: string;
        user?: string;
        text?: string;
        channel: string;
        thread_ts?: string;
      };
      if (m.subtype || m.bot_id || !m.user || !m.thread_ts || !m.text) return;
      const threadId = `${m.channel}:${m.thread_ts}`;
      if (!(await this.options.bot.chats.get(this.platform, threadId).catch(() => null))) return;
      const ctx = await this.context(
        { user_id: m.user, user_name: `<@${m.user}>`, channel_id: m.channel },
        (text) => this.postIn(m.channel, m.thread_ts!, text).then(() => undefined),
        m.thread_ts,
      );
      await this.options.bot.commands.threadTurn(ctx, threadId, fromSlackText(m.text!));
    });
    this.app.error(async (e) => log.error('bolt error', e));
  }

  async start(): Promise<void> {
    if (this.options.mode === 'http') await this.app.start(this.options.port);
    else await this.app.start();
    await resumeMessages(this.options.bot, this);
  }

  /** The port the HTTP receiver listens on (HTTP mode). */
  get port(): number | undefined {
    const server = (this.receiver as unknown as { server?: { address(): { port: number } | null } }).server;
    return server?.address()?.port;
  }

  async stop(): Promise<void> {
    await this.app.stop();
  }

  mention(userId: string): string {
    return `<@${userId}>`;
  }

  async post(channelId: string, text: string): Promise<MessageRef> {
    const res = await this.app.client.chat
      .postMessage({ channel: channelId, text: toMrkdwn(text), unfurl_links: false })
      .catch(channelError);
    return { channelId, id: res.ts! };
  }

  async edit(ref: MessageRef, text: string): Promise<void> {
    // Wait for room in the workspace's budget; meanwhile the live message keeps only its newest text.
    for (;;) {
      const now = Date.now();
      while (this.updates.length && now - this.updates[0]! >= 60_000) this.updates.shift();
      if (this.updates.length < LIMITS.updatesPerMinute) break;
      await new Promise((r) => setTimeout(r, 60_000 - (now - this.updates[0]!)));
    }
    this.updates.push(Date.now());
    await this.app.client.chat.update({ channel: ref.channelId, ts: ref.id, text: toMrkdwn(text) });
  }

  async finish(ref: MessageRef, text: string, file: Attachment): Promise<void> {
    await this.edit(ref, text);
    await this.app.client.files.uploadV2({
      channel_id: ref.channelId,
      thread_ts: ref.id,
      file: file.data,
      filename: file.name,
      title: file.title,
    });
  }

  /** `whisper` answers the caller alone, through the command's response_url: it works in channels the bot is not in. */
  private async run(
    name: string,
    command: { user_id: string; user_name: string; channel_id: string; text: string },
    whisper: (text: string) => Promise<unknown>,
  ): Promise<void> {
    const ctx = await this.context(command, whisper);
    await this.options.bot.commands.dispatchText(name, fromSlackText(command.text ?? ''), ctx);
  }

  /** A command's context; in a thread (`threadTs`), replies go into the thread. */
  private async context(
    who: { user_id: string; user_name: string; channel_id: string },
    whisper: (text: string) => Promise<unknown>,
    threadTs?: string,
  ): Promise<CommandContext> {
    const channel = who.channel_id;
    return {
      user: { id: who.user_id, name: who.user_name, platform: this.platform, roles: await this.groupsOf(who.user_id) },
      channelId: channel,
      surface: this,
      bot: this.options.bot,
      reply: (text) => (threadTs ? this.postIn(channel, threadTs, text) : this.post(channel, text)),
      replyPrivate: async (text) => void (await whisper(text)),
      // a /chat thread: the intro message starts it, and its replies are the conversation
      thread: {
        open: async (title) => `${channel}:${(await this.post(channel, `🧵 ${title}`)).id}`,
        say: async (threadId, text) => void (await this.postIn(channel, threadId.split(':')[1]!, text)),
        howToTalk: 'reply in this thread, every message a turn',
      },
    };
  }

  /** A message in a thread; its ref edits it like any other (chat.update takes the channel and its ts). */
  private async postIn(channel: string, threadTs: string, text: string): Promise<MessageRef> {
    const res = await this.app.client.chat
      .postMessage({ channel, thread_ts: threadTs, text: toMrkdwn(text), unfurl_links: false })
      .catch(channelError);
    return { channelId: channel, id: res.ts! };
  }

  /** The user groups (of those the access rules name) that a user belongs to, looked up once a minute. */
  private async groupsOf(userId: string): Promise<string[]> {
    const groups = this.options.bot.access.groups();
    if (groups.length === 0) return [];
    if (!this.groupsCache || Date.now() - this.groupsCache.at > GROUPS_CACHE_MS) {
      const members = new Map<string, Set<string>>();
      for (const g of groups) {
        const res = await this.app.client.usergroups.users.list({ usergroup: g }).catch((e) => {
          log.warn(`user group ${g}`, e);
          return { users: [] };
        });
        members.set(g, new Set(res.users ?? []));
      }
      this.groupsCache = { at: Date.now(), members };
    }
    return groups.filter((g) => this.groupsCache!.members.get(g)?.has(userId));
  }
}
