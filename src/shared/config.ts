/**
 * Every setting, read once from the environment (and `.env` if present) and checked with zod at start-up. Every
 * problem is listed at once. Nothing else in the code reads process.env. `.env.example` documents each setting.
 */
import { existsSync } from 'node:fs';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { parseRule, ruleProblems, type Permission, type Rule } from './access.ts';
import { configureLog } from './log.ts';
import { GPU_CLASS_RE, HOST_NAME_RE } from './runner-registry.ts';

export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'], { error: 'must be true or false' })
  .transform((v) => ['true', '1', 'yes'].includes(v));
const path = (fallback: string) =>
  z
    .string()
    .min(1)
    .default(fallback)
    .transform((p) => resolve(REPO_ROOT, p));

const rule = z
  .string()
  .transform(parseRule)
  .superRefine((r, ctx) => {
    for (const message of ruleProblems(r)) ctx.addIssue({ code: 'custom', message });
  });

const EnvSchema = z.object({
  REDIS_URL: z.url({ protocol: /^rediss?$/, error: 'must be a redis:// or rediss:// URL' }).optional(),
  EMBEDDED_REDIS_DIR: path('.cache/redis'),
  QUEUE_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9_-]+$/, 'letters, digits, _ and - only')
    .default('chatops'),
  EMBEDDED_RUNNER: bool.optional(),
  MODELS_DIR: path('models'),
  LOCAL_MODELS_DIR: z
    .string()
    .min(1)
    .transform((p) => resolve(REPO_ROOT, p))
    .optional(),
  DATASET: path('gpu-runner/trainer/data/sample_conversations.jsonl'),
  BASE_MODEL: z.string().min(1).default('tiny'),
  TRAINER_BACKEND: z.enum(['auto', 'cpu', 'cuda']).default('auto'),
  PYTHON: path('.venv/bin/python'),
  GPU_ID: z.coerce.number().int().nonnegative().optional(),
  RUNNER_HOST: z.string().regex(HOST_NAME_RE, 'letters, digits, ., _ and - only').optional(),
  GPU_CLASS: z.string().regex(GPU_CLASS_RE, 'letters, digits, ., _ and - only').optional(),
  JOBS_PER_GPU: z.coerce.number().int().min(1).max(8).default(1),
  RUNNER_HEARTBEAT_S: z.coerce.number().min(0.2).max(300).default(10),
  TRAINER_LOAD_IN_4BIT: bool.default(true),
  INFERENCE_DURING_TRAINING: z.enum(['wait', 'refuse', 'share']).default('wait'),
  ASK_MAX_NEW_TOKENS: z.coerce.number().int().min(16).max(32_768).default(1024),
  TRAINER_KILL_GRACE_MS: z.coerce.number().int().positive().default(10_000),
  TRAINER_STALL_TIMEOUT_S: z.coerce.number().positive().default(900),
  MIN_FREE_DISK_GB: z.coerce.number().nonnegative().default(2),
  JOB_LOCK_MS: z.coerce.number().int().min(1000).default(30_000),
  PROGRESS_EDIT_INTERVAL_MS: z.coerce.number().int().nonnegative().optional(),
  CONSOLE_USER: z.string().min(1).optional(),
  LOG_LEVEL: z.enum(['debug', 'info', 'warn', 'error']).optional(),
  DISCORD_TOKEN: z.string().min(20, 'looks too short for a bot token').optional(),
  DISCORD_APPLICATION_ID: z
    .string()
    .regex(/^\d{5,25}$/, 'must be the numeric application id')
    .optional(),
  DISCORD_GUILD_ID: z
    .string()
    .regex(/^\d{5,25}$/, 'must be a numeric guild (server) id')
    .optional(),
  DISCORD_API_BASE: z.url({ protocol: /^https?$/ }).optional(),
  DISCORD_CHAT_THREADS: bool.default(false),
  SLACK_BOT_TOKEN: z
    .string()
    .regex(/^xoxb-/, 'must be a bot token (xoxb-…)')
    .optional(),
  SLACK_APP_TOKEN: z
    .string()
    .regex(/^xapp-/, 'must be an app-level token (xapp-…)')
    .optional(),
  SLACK_SIGNING_SECRET: z.string().min(8).optional(),
  SLACK_MODE: z.enum(['socket', 'http']).optional(),
  SLACK_PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  SLACK_API_URL: z.url({ protocol: /^https?$/ }).optional(),
  ALLOW_TRAIN: rule.default(['*']),
  ALLOW_CANCEL_ANY: rule.default([]),
  ALLOW_ASK: rule.default(['*']),
  ALLOW_MANAGE_MODELS: rule.default(['*']),
  ASKS_PER_MINUTE: z.coerce.number().int().positive().default(10),
  MAX_QUEUED_PER_USER: z.coerce.number().int().positive().default(3),
});

export interface Config {
  redisUrl: string | undefined;
  /**
   * Where the bot's own redis-server (REDIS_URL unset) keeps its data, an append-only file, so job ids, jobs and /chat
   * conversations outlive a restart. One bot process per folder at a time; delete it to start afresh.
   */
  embeddedRedisDir: string;
  queuePrefix: string;
  /** Run the GPU runner inside the bot process (the embedded default does, when REDIS_URL is unset). */
  embeddedRunner: boolean;
  modelsDir: string;
  /**
   * A runner host without the shared models folder mounted as MODELS_DIR trains here (its own disk) and copies each
   * finished model to MODELS_DIR, checksummed, before latest moves (gpu-runner/publish.ts). Unset: it trains in
   * MODELS_DIR itself.
   */
  localModelsDir: string | undefined;
  dataset: string;
  baseModel: string;
  trainerBackend: 'auto' | 'cpu' | 'cuda';
  python: string;
  gpuId: number | undefined;
  /** This runner's host in /runners and for jobs that ask for a host (default: the machine's host name). */
  runnerHost: string;
  /** What /train's `gpu` option matches for this runner; unset: from the GPU's name (h100, a100…), `cpu` on the CPU. */
  gpuClass: string | undefined;
  /** Trainings that may share one GPU of a host at once, across every runner process pinned to it. */
  jobsPerGpu: number;
  /** A runner's heartbeat interval (s); it counts as silent after three missed beats. */
  runnerHeartbeatS: number;
  /**
   * Asks while this runner trains: wait (the inference worker leaves the GPU to training; asks wait for it to end),
   * refuse (asks fail with a message saying why), or share (both at once: enough GPU memory, or the CPU).
   */
  inferenceDuringTraining: 'wait' | 'refuse' | 'share';
  /** The most tokens one answer may generate, reasoning included. */
  askMaxNewTokens: number;
  /** The CUDA backend loads the base in 4 bits (QLoRA); false: a 16-bit LoRA. Passed to the trainer. */
  trainerLoadIn4bit: boolean;
  trainerKillGraceMs: number;
  /** The watchdog: a trainer that prints nothing (stdout or stderr) for this long is stopped and its job failed. */
  trainerStallTimeoutS: number;
  /** A runner refuses to start a training when the models folder's disk has less free space than this. */
  minFreeDiskGb: number;
  /**
   * How long a runner's claim on a job lasts without renewal (BullMQ's lock; renewed every half of it). A runner that
   * dies loses its job after this, and a live runner takes it again and resumes it from its newest checkpoint.
   */
  jobLockMs: number;
  /** Overrides the platform's own edit interval for progress messages (ms). */
  progressEditIntervalMs: number | undefined;
  consoleUser: string;
  /** Unset: each entry point picks its own (the console bot: warn; a runner host: info). */
  logLevel: 'debug' | 'info' | 'warn' | 'error' | undefined;
  discord:
    | {
        token: string;
        applicationId: string;
        guildId: string | undefined;
        apiBase: string | undefined;
        chatThreads: boolean;
      }
    | undefined;
  slack:
    | { botToken: string; mode: 'socket'; appToken: string; apiUrl: string | undefined }
    | { botToken: string; mode: 'http'; signingSecret: string; port: number; apiUrl: string | undefined }
    | undefined;
  /** Who may do what (src/shared/access.ts). */
  access: Record<Permission, Rule>;
  /** Trainings one user may have waiting or running at once. */
  maxQueuedPerUser: number;
  /** Asks one user may make in a minute. */
  asksPerMinute: number;
  /** Values that must never appear in a log or a message. */
  secrets: string[];
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid settings:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

export function loadConfig(env: Record<string, string | undefined> = readEnv()): Config {
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = EnvSchema.safeParse(cleaned);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`));
  }
  const e = parsed.data;
  const secrets: string[] = [];
  const problems: string[] = [];
  if (e.DISCORD_TOKEN && !e.DISCORD_APPLICATION_ID)
    problems.push('DISCORD_APPLICATION_ID: required with DISCORD_TOKEN');
  const slackMode = e.SLACK_MODE ?? (e.SLACK_APP_TOKEN ? 'socket' : 'http');
  if (e.SLACK_BOT_TOKEN && slackMode === 'socket' && !e.SLACK_APP_TOKEN)
    problems.push('SLACK_APP_TOKEN: required for Socket Mode');
  if (e.SLACK_BOT_TOKEN && slackMode === 'http' && !e.SLACK_SIGNING_SECRET)
    problems.push('SLACK_SIGNING_SECRET: required with SLACK_BOT_TOKEN (or set SLACK_APP_TOKEN for Socket Mode)');
  if (problems.length) throw new ConfigError(problems);
  for (const s of [e.DISCORD_TOKEN, e.SLACK_BOT_TOKEN, e.SLACK_APP_TOKEN, e.SLACK_SIGNING_SECRET])
    if (s) secrets.push(s);
  if (e.REDIS_URL) {
    const u = new URL(e.REDIS_URL);
    if (u.password) secrets.push(decodeURIComponent(u.password), u.password);
  }
  return {
    redisUrl: e.REDIS_URL,
    embeddedRedisDir: e.EMBEDDED_REDIS_DIR,
    queuePrefix: e.QUEUE_PREFIX,
    embeddedRunner: e.EMBEDDED_RUNNER ?? e.REDIS_URL === undefined,
    modelsDir: e.MODELS_DIR,
    localModelsDir: e.LOCAL_MODELS_DIR,
    dataset: e.DATASET,
    baseModel: e.BASE_MODEL,
    trainerBackend: e.TRAINER_BACKEND,
    python: e.PYTHON,
    gpuId: e.GPU_ID,
    runnerHost: e.RUNNER_HOST ?? hostname().split('.')[0]!,
    gpuClass: e.GPU_CLASS?.toLowerCase(),
    jobsPerGpu: e.JOBS_PER_GPU,
    runnerHeartbeatS: e.RUNNER_HEARTBEAT_S,
    trainerLoadIn4bit: e.TRAINER_LOAD_IN_4BIT,
    inferenceDuringTraining: e.INFERENCE_DURING_TRAINING,
    askMaxNewTokens: e.ASK_MAX_NEW_TOKENS,
    trainerKillGraceMs: e.TRAINER_KILL_GRACE_MS,
    trainerStallTimeoutS: e.TRAINER_STALL_TIMEOUT_S,
    minFreeDiskGb: e.MIN_FREE_DISK_GB,
    jobLockMs: e.JOB_LOCK_MS,
    progressEditIntervalMs: e.PROGRESS_EDIT_INTERVAL_MS,
    consoleUser: e.CONSOLE_USER ?? env.USER ?? 'you',
    logLevel: e.LOG_LEVEL,
    discord: e.DISCORD_TOKEN
      ? {
          token: e.DISCORD_TOKEN,
          applicationId: e.DISCORD_APPLICATION_ID!,
          guildId: e.DISCORD_GUILD_ID,
          apiBase: e.DISCORD_API_BASE,
          chatThreads: e.DISCORD_CHAT_THREADS,
        }
      : undefined,
    slack: !e.SLACK_BOT_TOKEN
      ? undefined
      : slackMode === 'socket'
        ? { botToken: e.SLACK_BOT_TOKEN, mode: 'socket', appToken: e.SLACK_APP_TOKEN!, apiUrl: e.SLACK_API_URL }
        : {
            botToken: e.SLACK_BOT_TOKEN,
            mode: 'http',
            signingSecret: e.SLACK_SIGNING_SECRET!,
            port: e.SLACK_PORT,
            apiUrl: e.SLACK_API_URL,
          },
    access: {
      train: e.ALLOW_TRAIN,
      cancel_any: e.ALLOW_CANCEL_ANY,
      ask: e.ALLOW_ASK,
      manage_models: e.ALLOW_MANAGE_MODELS,
    },
    maxQueuedPerUser: e.MAX_QUEUED_PER_USER,
    asksPerMinute: e.ASKS_PER_MINUTE,
    secrets: secrets.filter((s) => s.length >= 4),
  };
}

/** Settings that hold a secret (REDIS_URL: its password). */
const SECRET_SETTINGS = [
  'DISCORD_TOKEN',
  'SLACK_BOT_TOKEN',
  'SLACK_APP_TOKEN',
  'SLACK_SIGNING_SECRET',
  'REDIS_URL',
] as const;

/**
 * For an entry point: the settings, with the log set up from them (at `defaultLogLevel` unless LOG_LEVEL says), or
 * null after every problem was printed to stderr. The secrets then leave the process environment: the trainer and
 * the inference worker inherit it, need none of them, and what they print can end up in a channel.
 */
export function loadConfigForCli(defaultLogLevel: NonNullable<Config['logLevel']>): Config | null {
  try {
    const config = loadConfig();
    configureLog({ level: config.logLevel ?? defaultLogLevel, secrets: config.secrets });
    for (const name of SECRET_SETTINGS) delete process.env[name];
    return config;
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    process.stderr.write(`${e.message}\n(.env.example describes every setting)\n`);
    return null;
  }
}

/** process.env, with `.env` from the repository root loaded first when it exists. */
function readEnv(): Record<string, string | undefined> {
  const file = resolve(REPO_ROOT, '.env');
  if (existsSync(file)) process.loadEnvFile(file);
  return process.env;
}
