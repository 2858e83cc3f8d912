/**
 * A whole bot process in a test: the real Redis from global setup, the real runner and trainer (CPU backend), and the
 * console adapter reading from a stream the test writes to. What the console prints is kept, line by line.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { inject } from 'vitest';
import { startApp, type App } from '../../src/app.ts';
import { ConsoleChat, type ConsoleEnd } from '../../src/platforms/console.ts';
import { loadConfig, REPO_ROOT } from '../../src/shared/config.ts';

export interface Harness {
  app: App;
  modelsDir: string;
  lines: string[];
  /** Types one line into the console. */
  type(line: string): void;
  /** Resolves with the first printed line that matches, after `from` lines. */
  waitFor(pattern: RegExp, timeoutMs?: number, from?: number): Promise<string>;
  /** Ends the input; resolves when the console has run every line. */
  endInput(): Promise<ConsoleEnd>;
  stop(): Promise<void>;
}

let counter = 0;

export async function startHarness(env: Record<string, string> = {}): Promise<Harness> {
  const modelsDir = env.MODELS_DIR ?? (await mkdtemp(join(tmpdir(), 'chatops-models-')));
  const config = loadConfig({
    REDIS_URL: inject('redisUrl'),
    QUEUE_PREFIX: `test${process.pid}x${++counter}`,
    EMBEDDED_RUNNER: 'true',
    MODELS_DIR: modelsDir,
    PYTHON: join(REPO_ROOT, '.venv/bin/python'),
    PROGRESS_EDIT_INTERVAL_MS: '100',
    TRAINER_KILL_GRACE_MS: '5000',
    CONSOLE_USER: 'ada',
    ...env,
  });
  const app = await startApp(config, { stalledInterval: 1_000 });
  const input = new PassThrough();
  const output = new PassThrough();
  const lines: string[] = [];
  let buffer = '';
  output.on('data', (chunk: Buffer) => {
    buffer += chunk.toString('utf8');
    const parts = buffer.split('\n');
    buffer = parts.pop()!;
    lines.push(...parts);
  });
  const chat = new ConsoleChat({ bot: app.bot, input, output, tty: false, user: config.consoleUser });
  const ended = chat.run();
  return {
    app,
    modelsDir,
    lines,
    type: (line) => void input.write(`${line}\n`),
    async waitFor(pattern, timeoutMs = 60_000, from = 0) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const hit = lines.slice(from).find((l) => pattern.test(l));
        if (hit) return hit;
        if (Date.now() > deadline)
          throw new Error(
            `no line matched ${pattern} within ${timeoutMs} ms; the console printed:\n${lines.join('\n')}`,
          );
        await new Promise((r) => setTimeout(r, 25));
      }
    },
    endInput() {
      input.end();
      return ended;
    },
    async stop() {
      input.end();
      await ended;
      await app.stop();
      if (!env.MODELS_DIR) await rm(modelsDir, { recursive: true, force: true });
    },
  };
}
