/**
 * A stand-in for Discord's servers on 127.0.0.1, enough for the real discord.js client: the gateway (HELLO, IDENTIFY →
 * READY, heartbeat ACK, dispatches such as INTERACTION_CREATE) and the REST routes the bot uses (gateway/bot, the
 * application commands, interaction callbacks, webhook messages, channel messages). Every request is recorded.
 */
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { WebSocketServer, type WebSocket } from 'ws';

export interface RecordedRequest {
  at: number;
  method: string;
  path: string;
  auth: string | undefined;
  body: any;
  /** Files of a multipart request: name and bytes. */
  files: { name: string; data: Buffer }[];
}

export interface DoubleMessage {
  id: string;
  channelId: string;
  content: string;
  flags: number;
  /** Every content it had, in order, with when. */
  history: { at: number; content: string; via: 'webhook' | 'channel'; files: string[] }[];
  files: { name: string; data: Buffer }[];
}

export const APP_ID = '1100000000000000001';
export const GUILD_ID = '1200000000000000001';
export const CHANNEL_ID = '1300000000000000001';
export const BOT_USER_ID = '1400000000000000001';

/** Discord ids carry their creation time (ms since 2015) in the top bits: make them from now, as Discord does. */
let increment = 0n;
const nextId = () => String(((BigInt(Date.now()) - 1420070400000n) << 22n) | (++increment & 0xfffn));

export class DiscordDouble {
  readonly requests: RecordedRequest[] = [];
  readonly messages = new Map<string, DoubleMessage>();
  /** Interaction id → callback type, and when it came. */
  readonly callbacks = new Map<string, { type: number; flags: number; at: number }>();
  commands: any[] = [];
  /** Threads the bot started: id → name. */
  readonly threads = new Map<string, string>();
  commandPuts = 0;
  /** Tokens that answer 401 "Invalid Webhook Token", as after Discord's 15 minutes. */
  readonly expiredTokens = new Set<string>();
  private readonly sockets = new Set<WebSocket>();
  private readonly dispatchedAt = new Map<string, number>();
  /** Interaction id → the INTERACTION_CREATE payload sent for it, for a second delivery. */
  private readonly interactions = new Map<string, unknown>();
  private readonly originals = new Map<string, string>();
  private sequence = 0;
  private server!: Server;
  private wss!: WebSocketServer;
  port = 0;
  identified!: Promise<void>;
  private resolveIdentified!: () => void;

  get apiBase(): string {
    return `http://127.0.0.1:${this.port}/api`;
  }

  async start(): Promise<void> {
    this.identified = new Promise((r) => (this.resolveIdentified = r));
    this.server = createServer((req, res) => {
      void this.route(req).then(
        ({ status, body }) => {
          res.writeHead(status, body === undefined ? {} : { 'content-type': 'application/json' });
          res.end(body === undefined ? undefined : JSON.stringify(body));
        },
        (e) => {
          res.writeHead(500, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ message: String(e), code: 0 }));
        },
      );
    });
    this.wss = new WebSocketServer({ server: this.server });
    this.wss.on('connection', (ws) => this.onSocket(ws));
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    this.port = (this.server.address() as { port: number }).port;
  }

  async stop(): Promise<void> {
    for (const ws of this.sockets) ws.terminate();
    this.wss.close();
    this.server.closeAllConnections();
    await new Promise((r) => this.server.close(r));
  }

  /** Sends a slash command as Discord would; returns the interaction's id and token. */
  slash(
    command: string,
    sub: string | undefined,
    options: Record<string, string | number>,
    user: { id: string; name: string; roles?: string[] },
  ) {
    const opts = Object.entries(options).map(([name, value]) => ({
      name,
      type: typeof value === 'number' ? 4 : 3,
      value,
    }));
    const data = {
      id: nextId(),
      name: command,
      type: 1,
      options: sub ? [{ type: 1, name: sub, options: opts }] : opts,
    };
    return this.interaction(2, data, user);
  }

  autocomplete(command: string, sub: string, option: string, typed: string, user: { id: string; name: string }) {
    const data = {
      id: nextId(),
      name: command,
      type: 1,
      options: [{ type: 1, name: sub, options: [{ type: 3, name: option, value: typed, focused: true }] }],
    };
    return this.interaction(4, data, user);
  }

  private interaction(type: number, data: unknown, user: { id: string; name: string; roles?: string[] }) {
    const id = nextId();
    const token = `itok-${id}`;
    this.dispatchedAt.set(id, performance.now());
    const payload = {
      id,
      application_id: APP_ID,
      type,
      token,
      version: 1,
      guild_id: GUILD_ID,
      channel_id: CHANNEL_ID,
      channel: { id: CHANNEL_ID, type: 0, guild_id: GUILD_ID, name: 'ml-team' },
      member: {
        user: { id: user.id, username: user.name, discriminator: '0', global_name: user.name, avatar: null },
        roles: user.roles ?? [],
        permissions: '0',
        joined_at: '2025-01-01T00:00:00.000Z',
        deaf: false,
        mute: false,
        flags: 0,
      },
      data,
      locale: 'en-US',
      guild_locale: 'en-US',
      app_permissions: '0',
      entitlements: [],
      authorizing_integration_owners: {},
      context: 0,
    };
    this.interactions.set(id, payload);
    this.dispatch('INTERACTION_CREATE', payload);
    return { id, token };
  }

  /** The same interaction once more, as a gateway that resumes and replays its events would deliver it. */
  redeliver(interactionId: string): void {
    this.dispatch('INTERACTION_CREATE', this.interactions.get(interactionId));
  }

  /** Someone writes in a channel or thread, as the gateway's MESSAGE_CREATE delivers it. */
  message(channelId: string, user: { id: string; name: string; roles?: string[] }, content: string): void {
    this.dispatch('MESSAGE_CREATE', {
      id: nextId(),
      channel_id: channelId,
      guild_id: GUILD_ID,
      author: { id: user.id, username: user.name, global_name: user.name, discriminator: '0', avatar: null },
      member: { roles: user.roles ?? [], joined_at: '2025-01-01T00:00:00.000Z', deaf: false, mute: false, flags: 0 },
      content,
      timestamp: new Date().toISOString(),
      edited_timestamp: null,
      tts: false,
      mention_everyone: false,
      mentions: [],
      mention_roles: [],
      attachments: [],
      embeds: [],
      pinned: false,
      type: 0,
    });
  }

  /** Milliseconds from sending the interaction to its callback (the defer or the answer). */
  answerDelayMs(interactionId: string): number | undefined {
    const cb = this.callbacks.get(interactionId);
    const sent = this.dispatchedAt.get(interactionId);
    return cb && sent !== undefined ? cb.at - sent : undefined;
  }

  /** The message that answered an interaction (its deferred original), once there is one. */
  original(token: string): DoubleMessage | undefined {
    const id = this.originals.get(token);
    return id ? this.messages.get(id) : undefined;
  }

  /** Messages the bot sent in answer to one interaction token, the original first. */
  messagesOf(token: string): DoubleMessage[] {
    return [...this.messages.values()].filter((m) => (m as DoubleMessage & { token?: string }).token === token);
  }

  dispatch(t: string, d: unknown): void {
    const payload = JSON.stringify({ op: 0, t, s: ++this.sequence, d });
    for (const ws of this.sockets) ws.send(payload);
  }

  private onSocket(ws: WebSocket): void {
    this.sockets.add(ws);
    ws.on('close', () => this.sockets.delete(ws));
    ws.send(JSON.stringify({ op: 10, d: { heartbeat_interval: 41_250 } }));
    ws.on('message', (raw) => {
      const msg = JSON.parse(String(raw));
      if (msg.op === 1) ws.send(JSON.stringify({ op: 11 }));
      if (msg.op === 2) {
        ws.send(
          JSON.stringify({
            op: 0,
            t: 'READY',
            s: ++this.sequence,
            d: {
              v: 10,
              user: { id: BOT_USER_ID, username: 'trainbot', discriminator: '0', bot: true, avatar: null },
              guilds: [],
              session_id: 'session-1',
              resume_gateway_url: `ws://127.0.0.1:${this.port}`,
              application: { id: APP_ID, flags: 0 },
            },
          }),
        );
        this.resolveIdentified();
      }
    });
  }

  private async route(req: IncomingMessage): Promise<{ status: number; body?: unknown }> {
    const url = new URL(req.url!, `http://127.0.0.1:${this.port}`);
    const path = decodeURIComponent(url.pathname).replace(/^\/api\/v\d+/, '');
    const raw = await readBody(req);
    const { body, files } = await parseBody(req, raw);
    this.requests.push({
      at: performance.now(),
      method: req.method!,
      path,
      auth: req.headers.authorization,
      body,
      files,
    });
    let m: RegExpExecArray | null;

    if (req.method === 'GET' && path === '/gateway/bot') {
      return {
        status: 200,
        body: {
          url: `ws://127.0.0.1:${this.port}`,
          shards: 1,
          session_start_limit: { total: 1000, remaining: 999, reset_after: 0, max_concurrency: 1 },
        },
      };
    }
    if ((m = /^\/applications\/(\d+)(?:\/guilds\/(\d+))?\/commands$/.exec(path))) {
      if (req.method === 'GET') return { status: 200, body: this.commands };
      if (req.method === 'PUT') {
        // as Discord does: required options must come before optional ones, at every level
        const misordered = (opts: any[] = []): boolean =>
          opts.some(
            (o, i) =>
              (o.required && opts.slice(0, i).some((p) => !p.required && p.type !== 1)) || misordered(o.options),
          );
        if ((body as any[]).some((c) => misordered(c.options))) {
          return {
            status: 400,
            body: {
              message: 'Invalid Form Body',
              code: 50035,
              errors: { options: 'Required options must be placed before non-required options' },
            },
          };
        }
        this.commandPuts++;
        this.commands = (body as any[]).map((c) => ({ ...c, id: nextId(), application_id: APP_ID, version: '1' }));
        return { status: 200, body: this.commands };
      }
    }
    if ((m = /^\/interactions\/(\d+)\/([^/]+)\/callback$/.exec(path)) && req.method === 'POST') {
      const [, id, token] = m;
      // as Discord does: an interaction is answered once
      if (this.callbacks.has(id!))
        return { status: 400, body: { message: 'Interaction has already been acknowledged.', code: 40060 } };
      this.callbacks.set(id!, { type: body.type, flags: body.data?.flags ?? 0, at: performance.now() });
      if (body.type === 5 || body.type === 4) {
        const msg = this.newMessage(
          CHANNEL_ID,
          body.type === 4 ? (body.data?.content ?? '') : '',
          body.data?.flags ?? 0,
          token!,
        );
        this.originals.set(token!, msg.id);
      }
      return { status: 204 };
    }
    if ((m = /^\/webhooks\/(\d+)\/([^/]+)(?:\/messages\/([^/]+))?$/.exec(path))) {
      const [, , token, which] = m;
      if (this.expiredTokens.has(token!))
        return { status: 401, body: { message: 'Invalid Webhook Token', code: 50027 } };
      if (req.method === 'POST' && !which) {
        const msg = this.newMessage(CHANNEL_ID, body.content ?? '', body.flags ?? 0, token!);
        return { status: 200, body: apiMessage(msg) };
      }
      const id = which === '@original' ? this.originals.get(token!) : which;
      const msg = id ? this.messages.get(id) : undefined;
      if (!msg) return { status: 404, body: { message: 'Unknown Message', code: 10008 } };
      if (req.method === 'PATCH')
        return { status: 200, body: apiMessage(this.editMessage(msg, body, files, 'webhook')) };
      if (req.method === 'DELETE') {
        this.messages.delete(msg.id);
        return { status: 204 };
      }
    }
    if ((m = /^\/channels\/(\d+)\/messages\/(\d+)\/threads$/.exec(path)) && req.method === 'POST') {
      const thread = {
        id: nextId(),
        type: 11,
        parent_id: m[1],
        guild_id: GUILD_ID,
        name: body.name,
        owner_id: BOT_USER_ID,
      };
      this.threads.set(thread.id, thread.name);
      return { status: 201, body: thread };
    }
    if ((m = /^\/channels\/(\d+)\/messages(?:\/(\d+))?$/.exec(path))) {
      const [, channelId, id] = m;
      if (req.method === 'POST' && !id)
        return { status: 200, body: apiMessage(this.newMessage(channelId!, body.content ?? '', 0, '')) };
      const msg = id ? this.messages.get(id) : undefined;
      if (!msg) return { status: 404, body: { message: 'Unknown Message', code: 10008 } };
      if (req.method === 'PATCH')
        return { status: 200, body: apiMessage(this.editMessage(msg, body, files, 'channel')) };
    }
    return { status: 404, body: { message: `the double has no route ${req.method} ${path}`, code: 0 } };
  }

  private newMessage(channelId: string, content: string, flags: number, token: string): DoubleMessage {
    const msg = {
      id: nextId(),
      channelId,
      content,
      flags,
      history: [{ at: performance.now(), content, via: 'webhook' as const, files: [] }],
      files: [],
      token,
    };
    this.messages.set(msg.id, msg);
    return msg;
  }

  private editMessage(
    msg: DoubleMessage,
    body: any,
    files: { name: string; data: Buffer }[],
    via: 'webhook' | 'channel',
  ): DoubleMessage {
    if (typeof body.content === 'string') msg.content = body.content;
    if (files.length) msg.files = files;
    msg.history.push({ at: performance.now(), content: msg.content, via, files: files.map((f) => f.name) });
    return msg;
  }
}

function apiMessage(m: DoubleMessage) {
  return {
    id: m.id,
    channel_id: m.channelId,
    content: m.content,
    flags: m.flags,
    type: 0,
    author: { id: BOT_USER_ID, username: 'trainbot', discriminator: '0', bot: true, avatar: null },
    timestamp: new Date().toISOString(),
    edited_timestamp: null,
    tts: false,
    mention_everyone: false,
    mentions: [],
    mention_roles: [],
    attachments: m.files.map((f, i) => ({
      id: String(i),
      filename: f.name,
      size: f.data.length,
      url: `http://127.0.0.1/${f.name}`,
      proxy_url: '',
    })),
    embeds: [],
    pinned: false,
    components: [],
  };
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function parseBody(
  req: IncomingMessage,
  raw: Buffer,
): Promise<{ body: any; files: { name: string; data: Buffer }[] }> {
  const type = req.headers['content-type'] ?? '';
  if (type.startsWith('multipart/form-data')) {
    const form = await new Request('http://x/', {
      method: 'POST',
      headers: { 'content-type': type },
      body: new Uint8Array(raw),
    }).formData();
    const files: { name: string; data: Buffer }[] = [];
    let body: any = {};
    for (const [key, value] of form.entries()) {
      if (key === 'payload_json') body = JSON.parse(String(value));
      else if (typeof value !== 'string')
        files.push({ name: (value as File).name, data: Buffer.from(await (value as File).arrayBuffer()) });
    }
    return { body, files };
  }
  if (raw.length === 0) return { body: {}, files: [] };
  return { body: JSON.parse(raw.toString('utf8')), files: [] };
}
