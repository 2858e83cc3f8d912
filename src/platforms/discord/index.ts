/**
 * The Discord adapter: the real discord.js client on the gateway. It registers our commands, defers every
 * interaction before any work (Discord wants an answer within 3 s), turns the interaction into a CommandContext, and
 * keeps job messages up to date: through the interaction's webhook while its token lives (15 minutes), then through
 * the bot's own channel message.
 */
import {
  Client,
  DiscordAPIError,
  escapeMarkdown,
  Events,
  GatewayIntentBits,
  MessageFlags,
  Routes,
  type AutocompleteInteraction,
  type ChatInputCommandInteraction,
  type Interaction,
  type RESTOptions,
} from 'discord.js';
import { resumeMessages, type BotServices } from '../../bot/bot.ts';
import type { CommandContext } from '../../bot/command-kit.ts';
import type { Attachment, ChatPlatform, MessageRef } from '../../bot/surface.ts';
import { logger } from '../../shared/log.ts';
import { PLATFORM_LIMITS } from '../limits.ts';
import { renderQuotes, safeOutput } from '../../bot/user-text.ts';
import { registerCommands } from './commands.ts';

const log = logger('discord');
const LIMITS = PLATFORM_LIMITS.discord;
const INVALID_WEBHOOK_TOKEN = 50027;

export interface DiscordOptions {
  bot: BotServices;
  token: string;
  applicationId: string;
  guildId?: string;
  apiBase?: string;
  /** How long an interaction token is used for edits before the bot's channel message takes over (ms). */
  interactionTokenTtlMs?: number;
  /**
   * /chat threads: the bot reads the messages posted in its threads, which needs the privileged Message Content
   * intent (enable it in the Developer Portal first, or Discord refuses the connection).
   */
  chatThreads?: boolean;
}

interface InteractionMessage {
  token: string;
  createdAt: number;
}

interface GatewayMessage {
  id: string;
  channel_id: string;
  content: string;
  author: { id: string; username: string; global_name?: string | null; bot?: boolean };
  member?: { roles: string[] };
}

/** The core's text as Discord shows it: a user's quoted word with its markdown escaped, clipped to a message. */
const clip = (core: string) => {
  const text = safeOutput(renderQuotes(core, escapeMarkdown));
  return text.length > LIMITS.messageChars ? `${text.slice(0, LIMITS.messageChars - 1)}…` : text;
};

export class DiscordChat implements ChatPlatform {
  readonly platform = 'discord';
  readonly editIntervalMs = LIMITS.editIntervalMs;
  readonly minEditIntervalMs = LIMITS.minEditIntervalMs;
  readonly client: Client;
  /** Messages that answer an interaction, by message id: their webhook token and when it was issued. */
  private readonly viaWebhook = new Map<string, InteractionMessage>();
  private readonly tokenTtlMs: number;

  constructor(private readonly options: DiscordOptions) {
    this.tokenTtlMs = options.interactionTokenTtlMs ?? LIMITS.interactionTokenMs - 60_000;
    // Requests go through Node's own fetch: discord.js's bundled undici would hand a multipart body (the loss curve)
    // to the process-wide dispatcher, which is a newer undici's once Bolt is loaded beside it, and that one fails.
    const makeRequest = ((url: string, init: RequestInit) => fetch(url, init)) as unknown as RESTOptions['makeRequest'];
    const intents = [
      GatewayIntentBits.Guilds,
      ...(options.chatThreads ? [GatewayIntentBits.GuildMessages, GatewayIntentBits.MessageContent] : []),
    ];
    this.client = new Client({ intents, rest: { makeRequest, ...(options.apiBase && { api: options.apiBase }) } });
    this.client.on(Events.InteractionCreate, (i) => void this.onInteraction(i));
    // Messages straight from the gateway: a thread need not be in discord.js's cache to hold a conversation.
    if (options.chatThreads)
      this.client.on(
        'raw',
        (p: { t?: string; d?: unknown }) => void (p.t === 'MESSAGE_CREATE' && this.onMessage(p.d as GatewayMessage)),
      );
    this.client.on(Events.Error, (e) => log.error('client error', e));
  }

  async start(): Promise<void> {
    const { bot, token, applicationId, guildId } = this.options;
    this.client.rest.setToken(token);
    const changed = await registerCommands(this.client.rest, applicationId, guildId, [
      ...bot.commands.commands.values(),
    ]);
    log.info(changed ? 'registered the slash commands' : 'slash commands unchanged');
    const ready = new Promise<void>((resolve) => this.client.once(Events.ClientReady, () => resolve()));
    await this.client.login(token);
    await ready;
    await resumeMessages(bot, this);
  }

  async stop(): Promise<void> {
    await this.client.destroy();
  }

  mention(userId: string): string {
    return `<@${userId}>`;
  }

  async post(channelId: string, text: string, options: { ping?: string } = {}): Promise<MessageRef> {
    const allowed = options.ping ? { parse: [], users: [options.ping] } : { parse: [] };
    const msg = (await this.client.rest.post(Routes.channelMessages(channelId), {
      body: { content: clip(text), allowed_mentions: allowed },
    })) as { id: string };
    return { channelId, id: msg.id };
  }

  edit(ref: MessageRef, text: string): Promise<void> {
    return this.send(ref, { content: clip(text), allowed_mentions: { parse: [] } });
  }

  finish(ref: MessageRef, text: string, file: Attachment): Promise<void> {
    const body = {
      content: clip(text),
      allowed_mentions: { parse: [] },
      attachments: [{ id: 0, filename: file.name, description: file.title }],
    };
    return this.send(ref, body, [{ name: file.name, data: file.data, contentType: 'image/png' }]);
  }

  /** Edits a message: through the interaction webhook while its token is good, else as the bot's channel message. */
  private async send(
    ref: MessageRef,
    body: object,
    files?: { name: string; data: Buffer; contentType: string }[],
  ): Promise<void> {
    const hook = this.viaWebhook.get(ref.id);
    if (hook && Date.now() - hook.createdAt < this.tokenTtlMs) {
      try {
        await this.client.rest.patch(Routes.webhookMessage(this.options.applicationId, hook.token, ref.id), {
          body,
          files,
          auth: false,
        });
        return;
      } catch (e) {
        if (!(e instanceof DiscordAPIError && e.code === INVALID_WEBHOOK_TOKEN)) throw e;
      }
    }
    this.viaWebhook.delete(ref.id);
    await this.client.rest.patch(Routes.channelMessage(ref.channelId, ref.id), { body, files });
  }

  private async onInteraction(interaction: Interaction): Promise<void> {
    try {
      if (interaction.isAutocomplete()) await this.autocomplete(interaction);
      else if (interaction.isChatInputCommand()) await this.command(interaction);
    } catch (e) {
      log.error(`interaction ${interaction.id} failed`, e);
    }
  }

  private async command(i: ChatInputCommandInteraction): Promise<void> {
    const { bot } = this.options;
    const command = bot.commands.commands.get(i.commandName);
    const sub = i.options.getSubcommand(false) ?? undefined;
    const handler = sub ? command?.subcommands?.find((s) => s.name === sub) : command;
    const ephemeral = Boolean(handler?.private);
    // A gateway that resumes can deliver an interaction again: only the first delivery is answered (the claim gives
    // up within half a second, so the defer still comes in time).
    if (!(await bot.deliveries.first(this.platform, i.id))) return;
    // Then the defer, before any work: Discord wants an answer within 3 seconds, whatever Redis is doing.
    await i.deferReply(ephemeral ? { flags: MessageFlags.Ephemeral } : {});
    let originalUsed = false;
    const remember = (msg: { id: string; channelId: string }): MessageRef => {
      for (const [id, hook] of this.viaWebhook)
        if (Date.now() - hook.createdAt > this.tokenTtlMs) this.viaWebhook.delete(id);
      this.viaWebhook.set(msg.id, { token: i.token, createdAt: i.createdTimestamp });
      return { channelId: msg.channelId, id: msg.id };
    };
    const roles = i.member ? (Array.isArray(i.member.roles) ? i.member.roles : [...i.member.roles.cache.keys()]) : [];
    const ctx: CommandContext = {
      user: { id: i.user.id, name: i.user.globalName ?? i.user.username, platform: this.platform, roles },
      channelId: i.channelId,
      surface: this,
      bot,
      reply: async (text) => {
        if (!originalUsed && !ephemeral) {
          originalUsed = true;
          return remember(await i.editReply({ content: clip(text), allowedMentions: { parse: [] } }));
        }
        return remember(await i.followUp({ content: clip(text), allowedMentions: { parse: [] } }));
      },
      ...(this.options.chatThreads && {
        thread: {
          open: async (title: string) => {
            const ref = await ctx.reply(`🧵 ${title}`);
            const thread = (await this.client.rest.post(Routes.threads(ref.channelId, ref.id), {
              body: { name: title.slice(0, 100), auto_archive_duration: 1440 },
            })) as { id: string };
            return thread.id;
          },
          say: async (threadId: string, text: string) => void (await this.post(threadId, text)),
          howToTalk: 'write in this thread, every message a turn',
        },
      }),
      replyPrivate: async (text) => {
        if (!originalUsed && ephemeral) {
          originalUsed = true;
          await i.editReply({ content: clip(text) });
          return;
        }
        if (!originalUsed) {
          originalUsed = true;
          await i.deleteReply(); // the public "thinking…" would stay forever otherwise
        }
        await i.followUp({ content: clip(text), flags: MessageFlags.Ephemeral });
      },
    };
    const raw: Record<string, unknown> = {};
    const given = sub ? (i.options.data[0]?.options ?? []) : i.options.data;
    for (const o of given) raw[o.name] = o.value;
    await bot.commands.dispatchNamed(i.commandName, sub, raw, ctx);
  }

  /** A message in one of the bot's /chat threads is the conversation's next turn; anything else is ignored. */
  private async onMessage(m: GatewayMessage): Promise<void> {
    try {
      if (m.author.bot || !m.content) return;
      const { bot } = this.options;
      const conversation = await bot.chats.get(this.platform, m.channel_id).catch(() => null);
      if (!conversation) return;
      const ctx: CommandContext = {
        user: {
          id: m.author.id,
          name: m.author.global_name ?? m.author.username,
          platform: this.platform,
          roles: m.member?.roles ?? [],
        },
        // the thread's parent channel: a rule by channel applies in its threads too (replies go to the thread)
        channelId: conversation.channelId ?? m.channel_id,
        surface: this,
        bot,
        reply: (text) => this.post(m.channel_id, text),
        replyPrivate: async (text) => void (await this.post(m.channel_id, text)), // a thread has no private replies
      };
      await bot.commands.threadTurn(ctx, m.channel_id, m.content);
    } catch (e) {
      log.error(`message ${m.id} in a chat thread`, e);
    }
  }

  private async autocomplete(i: AutocompleteInteraction): Promise<void> {
    const typed = String(i.options.getFocused()).toLowerCase();
    const names = [
      'latest',
      ...(await this.options.bot.models.list()).filter((m) => m.status === 'succeeded').map((m) => m.name),
    ];
    await i.respond(
      names
        .filter((n) => n.toLowerCase().includes(typed))
        .slice(0, 25)
        .map((n) => ({ name: n, value: n })),
    );
  }
}
