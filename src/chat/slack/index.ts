/**
 * The Slack adapter: the real Bolt app, in Socket Mode (default) or over HTTP with signed requests. Every slash
 * command is acknowledged first (Slack wants it within 3 s), then run; job messages are kept up to date with
 * chat.update (tier 3, well inside its limit at one edit per 1.5 s), and the loss curve goes up with files.uploadV2
 * in the job message's thread.
 */
import { App, HTTPReceiver, LogLevel, SocketModeReceiver } from '@slack/bolt';
import type { BotServices } from '../../bot.ts';
import type { Attachment, ChatSurface, CommandContext, MessageRef } from '../../command-kit.ts';
import { logger } from '../../log.ts';
import { PLATFORM_LIMITS } from '../limits.ts';

const log = logger('slack');
const LIMITS = PLATFORM_LIMITS.slack;
const GROUPS_CACHE_MS = 60_000;

export type SlackOptions = { bot: BotServices; botToken: string; apiUrl?: string } & (
  | { mode: 'socket'; appToken: string }
  | { mode: 'http'; signingSecret: string; port: number }
);

/** The core writes **bold** (as Discord does); Slack's mrkdwn wants *bold*. Clipped to Slack's message size. */
export function toMrkdwn(text: string): string {
  const out = text.replace(/\*\*(.+?)\*\*/g, '*$1*');
  return out.length > LIMITS.messageChars ? `${out.slice(0, LIMITS.messageChars - 1)}…` : out;
}

export class SlackChat implements ChatSurface {
  readonly platform = 'slack';
  readonly editIntervalMs = LIMITS.editIntervalMs;
  readonly app: InstanceType<typeof App>;
  private readonly receiver: InstanceType<typeof SocketModeReceiver> | InstanceType<typeof HTTPReceiver>;
  private groupsCache: { at: number; members: Map<string, Set<string>> } | null = null;

  constructor(private readonly options: SlackOptions) {
    const clientOptions = options.apiUrl ? { slackApiUrl: options.apiUrl } : {};
    this.receiver =
      options.mode === 'socket'
        ? new SocketModeReceiver({ appToken: options.appToken, installerOptions: { clientOptions }, logLevel: LogLevel.WARN })
        : new HTTPReceiver({ signingSecret: options.signingSecret, endpoints: '/slack/events', logLevel: LogLevel.WARN });
    this.app = new App({ token: options.botToken, receiver: this.receiver, clientOptions, logLevel: LogLevel.WARN });
    for (const name of options.bot.commands.commands.keys()) {
      this.app.command(`/${name}`, async ({ command, ack }) => {
        await ack(); // first, before any work
        await this.run(name, command);
      });
    }
    this.app.error(async (e) => log.error('bolt error', e));
  }

  async start(): Promise<void> {
    if (this.options.mode === 'http') await this.app.start(this.options.port);
    else await this.app.start();
    const resumed = await this.options.bot.watcher.resume(this, this.options.bot.config.progressEditIntervalMs);
    if (resumed.length) log.info(`editing the messages of jobs ${resumed.join(', ')} again`);
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
    const res = await this.app.client.chat.postMessage({ channel: channelId, text: toMrkdwn(text), unfurl_links: false });
    return { channelId, id: res.ts! };
  }

  async edit(ref: MessageRef, text: string): Promise<void> {
    await this.app.client.chat.update({ channel: ref.channelId, ts: ref.id, text: toMrkdwn(text) });
  }

  async finish(ref: MessageRef, text: string, file: Attachment): Promise<void> {
    await this.edit(ref, text);
    await this.app.client.files.uploadV2({ channel_id: ref.channelId, thread_ts: ref.id, file: file.data, filename: file.name, title: file.title });
  }

  private async run(name: string, command: { user_id: string; user_name: string; channel_id: string; text: string }): Promise<void> {
    const { bot } = this.options;
    const ctx: CommandContext = {
      user: { id: command.user_id, name: command.user_name, platform: this.platform, roles: await this.groupsOf(command.user_id) },
      channelId: command.channel_id,
      surface: this,
      bot,
      reply: (text) => this.post(command.channel_id, text),
      replyPrivate: async (text) => {
        await this.app.client.chat.postEphemeral({ channel: command.channel_id, user: command.user_id, text: toMrkdwn(text) });
      },
    };
    await bot.commands.dispatchText(name, command.text ?? '', ctx);
  }

  /** The user groups (of those the access rules name) that a user belongs to, looked up once a minute. */
  private async groupsOf(userId: string): Promise<string[]> {
    const groups = this.options.bot.access.groups();
    if (groups.length === 0) return [];
    if (!this.groupsCache || Date.now() - this.groupsCache.at > GROUPS_CACHE_MS) {
      const members = new Map<string, Set<string>>();
      for (const g of groups) {
        const res = await this.app.client.usergroups.users.list({ usergroup: g }).catch((e) => (log.warn(`user group ${g}`, e), { users: [] }));
        members.set(g, new Set(res.users ?? []));
      }
      this.groupsCache = { at: Date.now(), members };
    }
    return groups.filter((g) => this.groupsCache!.members.get(g)?.has(userId));
  }
}
