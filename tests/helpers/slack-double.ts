/**
 * A stand-in for Slack's servers on 127.0.0.1, enough for the real Bolt app: the Web API methods the bot calls
 * (auth.test, apps.connections.open, chat.postMessage/update/postEphemeral, usergroups.users.list and the three steps
 * of files.uploadV2) and the Socket Mode WebSocket (hello, envelopes, acks). Every call is recorded.
 */
import { createHmac, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { WebSocketServer, type WebSocket } from 'ws';

export interface SlackMessage {
  ts: string;
  channel: string;
  threadTs: string | undefined;
  text: string;
  history: { at: number; text: string }[];
  files: { name: string; title: string; bytes: number; threadTs: string | undefined }[];
}

export interface ApiCall {
  at: number;
  method: string;
  auth: string | undefined;
  args: Record<string, any>;
}

export const BOT_TOKEN = 'xoxb-fake1'; // short, so no scanner takes it for a real token
export const APP_TOKEN = 'xapp-fake1';
export const SIGNING_SECRET = 'test-signing-secret-0000';
export const CHANNEL = 'C0TEAM';

let tsCounter = 1_700_000_000;

export class SlackDouble {
  readonly calls: ApiCall[] = [];
  readonly messages = new Map<string, SlackMessage>();
  /** Answers only the caller saw: through the command's response_url. */
  readonly ephemeral: { channel: string; user: string; text: string; at: number; envelope?: string }[] = [];
  /** Channels the bot is a member of; chat.postMessage elsewhere answers not_in_channel, as Slack does. */
  readonly memberOf = new Set<string>([CHANNEL]);
  private readonly responseUrls = new Map<string, { channel: string; user: string; envelope?: string }>();
  readonly userGroups = new Map<string, string[]>();
  /** Envelope id → ms from sending to the bot's ack. */
  readonly ackDelays = new Map<string, number>();
  private readonly sentAt = new Map<string, number>();
  private readonly uploads = new Map<string, { name: string; bytes: number }>();
  private sockets = new Set<WebSocket>();
  private server!: Server;
  private wss!: WebSocketServer;
  private pinger?: NodeJS.Timeout;
  port = 0;
  /** Where the bot is told to send HTTP (response_url): this double, or a relay in front of it. */
  httpBase?: string;
  connected!: Promise<void>;
  private resolveConnected!: () => void;

  get apiUrl(): string {
    return `http://127.0.0.1:${this.port}/api/`;
  }

  async start(): Promise<void> {
    this.connected = new Promise((r) => (this.resolveConnected = r));
    this.server = createServer((req, res) => {
      void this.route(req).then(({ status, body }) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      });
    });
    this.wss = new WebSocketServer({ server: this.server, path: '/socket' });
    this.wss.on('connection', (ws) => {
      this.sockets.add(ws);
      ws.on('close', () => this.sockets.delete(ws));
      ws.on('message', (raw) => {
        const msg = JSON.parse(String(raw));
        if (msg.envelope_id && this.sentAt.has(msg.envelope_id))
          this.ackDelays.set(msg.envelope_id, performance.now() - this.sentAt.get(msg.envelope_id)!);
      });
      ws.send(
        JSON.stringify({
          type: 'hello',
          num_connections: 1,
          debug_info: { host: 'double', approximate_connection_time: 3600 },
          connection_info: { app_id: 'A0TEST' },
        }),
      );
      this.resolveConnected();
    });
    this.pinger = setInterval(() => {
      for (const ws of this.sockets) ws.ping();
    }, 5_000);
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    this.port = (this.server.address() as { port: number }).port;
  }

  async stop(): Promise<void> {
    clearInterval(this.pinger);
    for (const ws of this.sockets) ws.terminate();
    this.wss.close();
    this.server.closeAllConnections();
    await new Promise((r) => this.server.close(r));
  }

  /** A slash command through Socket Mode, as Slack sends it; returns the envelope id. */
  slash(command: string, text: string, user: { id: string; name: string }, channel = CHANNEL): string {
    const envelope = randomUUID();
    this.sentAt.set(envelope, performance.now());
    const payload = this.payload(command, text, user, channel, envelope);
    for (const ws of this.sockets)
      ws.send(
        JSON.stringify({ envelope_id: envelope, type: 'slash_commands', accepts_response_payload: true, payload }),
      );
    return envelope;
  }

  /** Someone writes a message (in a thread when `threadTs` is given), delivered as an Events API envelope. */
  message(channel: string, user: { id: string }, text: string, threadTs?: string): void {
    const ts = `${++tsCounter}.000200`;
    const event = {
      type: 'message',
      channel,
      user: user.id,
      text: asSlackSends(text),
      ts,
      ...(threadTs && { thread_ts: threadTs }),
      channel_type: 'channel',
      event_ts: ts,
    };
    const payload = {
      token: 'verification-token',
      team_id: 'T0TEAM',
      api_app_id: 'A0TEST',
      event,
      type: 'event_callback',
      event_id: `Ev${tsCounter}`,
      event_time: Math.floor(Date.now() / 1000),
    };
    for (const ws of this.sockets)
      ws.send(
        JSON.stringify({ envelope_id: randomUUID(), type: 'events_api', accepts_response_payload: false, payload }),
      );
  }

  /** A slash command's payload, with a response_url that this double answers. */
  payload(command: string, text: string, user: { id: string; name: string }, channel = CHANNEL, envelope?: string) {
    const id = randomUUID();
    this.responseUrls.set(id, { channel, user: user.id, envelope });
    return slashPayload(
      command,
      text,
      user,
      `${this.httpBase ?? `http://127.0.0.1:${this.port}`}/response/${id}`,
      channel,
    );
  }

  /** Messages in the channel whose text matches, newest last. */
  find(pattern: RegExp): SlackMessage | undefined {
    return [...this.messages.values()].filter((m) => pattern.test(m.history[0]!.text) || pattern.test(m.text)).at(-1);
  }

  private async route(req: IncomingMessage): Promise<{ status: number; body: unknown }> {
    const raw = await readBody(req);
    const url = new URL(req.url!, 'http://127.0.0.1');
    if (url.pathname.startsWith('/response/')) {
      const to = this.responseUrls.get(url.pathname.slice('/response/'.length));
      const body = JSON.parse(raw.toString() || '{}');
      if (to && body.response_type === 'ephemeral')
        this.ephemeral.push({
          channel: to.channel,
          user: to.user,
          text: body.text,
          at: performance.now(),
          envelope: to.envelope,
        });
      return { status: 200, body: { ok: true } };
    }
    if (url.pathname.startsWith('/upload/')) {
      const id = url.pathname.slice('/upload/'.length);
      const upload = this.uploads.get(id);
      if (upload) upload.bytes = raw.length;
      return { status: 200, body: { ok: true } };
    }
    const method = url.pathname.replace(/^\/api\//, '');
    const args = parseArgs(req.headers['content-type'], raw);
    this.calls.push({ at: performance.now(), method, auth: req.headers.authorization, args });
    const ts = () => `${++tsCounter}.000100`;
    switch (method) {
      case 'auth.test':
        return {
          status: 200,
          body: {
            ok: true,
            url: 'https://team.example/',
            team: 'Team',
            user: 'trainbot',
            team_id: 'T0TEAM',
            user_id: 'U0BOT',
            bot_id: 'B0BOT',
          },
        };
      case 'apps.connections.open':
        return { status: 200, body: { ok: true, url: `ws://127.0.0.1:${this.port}/socket` } };
      case 'chat.postMessage': {
        if (!this.memberOf.has(args.channel)) return { status: 200, body: { ok: false, error: 'not_in_channel' } };
        const m: SlackMessage = {
          ts: ts(),
          channel: args.channel,
          threadTs: args.thread_ts,
          text: args.text,
          history: [{ at: performance.now(), text: args.text }],
          files: [],
        };
        this.messages.set(m.ts, m);
        return {
          status: 200,
          body: { ok: true, channel: args.channel, ts: m.ts, message: { text: args.text, ts: m.ts } },
        };
      }
      case 'chat.update': {
        const m = this.messages.get(args.ts);
        if (!m) return { status: 200, body: { ok: false, error: 'message_not_found' } };
        m.text = args.text;
        m.history.push({ at: performance.now(), text: args.text });
        return { status: 200, body: { ok: true, channel: m.channel, ts: m.ts, text: m.text } };
      }
      case 'chat.postEphemeral':
        this.ephemeral.push({ channel: args.channel, user: args.user, text: args.text, at: performance.now() });
        return { status: 200, body: { ok: true, message_ts: ts() } };
      case 'usergroups.users.list':
        return { status: 200, body: { ok: true, users: this.userGroups.get(args.usergroup) ?? [] } };
      case 'files.getUploadURLExternal': {
        const id = `F${++tsCounter}`;
        this.uploads.set(id, { name: args.filename, bytes: 0 });
        return {
          status: 200,
          body: { ok: true, upload_url: `http://127.0.0.1:${this.port}/upload/${id}`, file_id: id },
        };
      }
      case 'files.completeUploadExternal': {
        const files = JSON.parse(args.files) as { id: string; title?: string }[];
        const thread = this.messages.get(args.thread_ts);
        for (const f of files) {
          const u = this.uploads.get(f.id)!;
          thread?.files.push({ name: u.name, title: f.title ?? '', bytes: u.bytes, threadTs: args.thread_ts });
        }
        return { status: 200, body: { ok: true, files: files.map((f) => ({ id: f.id, title: f.title })) } };
      }
      default:
        return { status: 200, body: { ok: false, error: 'unknown_method' } };
    }
  }
}

/** Slack sends the `&`, `<` and `>` a person typed as entities (its own markup, such as a picked mention, it does not). */
const asSlackSends = (typed: string) => typed.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export function slashPayload(
  command: string,
  text: string,
  user: { id: string; name: string },
  responseUrl: string,
  channel = CHANNEL,
) {
  return {
    token: 'verification-token',
    team_id: 'T0TEAM',
    team_domain: 'team',
    channel_id: channel,
    channel_name: 'ml-team',
    user_id: user.id,
    user_name: user.name,
    command,
    text: asSlackSends(text),
    api_app_id: 'A0TEST',
    is_enterprise_install: 'false',
    response_url: responseUrl,
    trigger_id: `trigger-${randomUUID()}`,
  };
}

/** Slack's request signature: v0=HMAC-SHA256(secret, "v0:{timestamp}:{body}"). */
export function sign(secret: string, timestamp: number, body: string): string {
  return `v0=${createHmac('sha256', secret).update(`v0:${timestamp}:${body}`).digest('hex')}`;
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

function parseArgs(type: string | undefined, raw: Buffer): Record<string, any> {
  if (type?.startsWith('application/json')) return JSON.parse(raw.toString() || '{}');
  return Object.fromEntries(new URLSearchParams(raw.toString()));
}
