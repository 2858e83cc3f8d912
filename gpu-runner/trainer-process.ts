/**
 * Runs train.py as a child in its own process group and turns its stdout protocol into typed messages. The command
 * line is an argument array (never a shell); a cancel signals the whole group, so no grandchild keeps the pipe open.
 */
import { execa } from 'execa';
import { createInterface } from 'node:readline';
import { logger } from '../src/log.ts';
import { parseTrainerLine, type DoneMessage, type TrainerMessage } from '../src/trainer-protocol.ts';

const log = logger('trainer');
const STDERR_TAIL_LINES = 20;

export type TrainerFailureKind = 'bad_input' | 'cancelled' | 'out_of_memory' | 'failed' | 'protocol';

/** The trainer did not finish: `message` is one line for the channel. */
export class TrainerFailed extends Error {
  override name = 'TrainerFailed';
  constructor(
    readonly kind: TrainerFailureKind,
    message: string,
  ) {
    super(message);
  }
}

export interface TrainerRun {
  python: string;
  script: string;
  args: string[];
  cwd: string;
  env?: Record<string, string>;
  /** Aborting it stops the trainer: SIGTERM to its group, SIGKILL after killGraceMs. */
  signal?: AbortSignal;
  killGraceMs: number;
  onMessage: (message: TrainerMessage) => void | Promise<void>;
}

export async function runTrainer(run: TrainerRun): Promise<DoneMessage> {
  const child = execa(run.python, ['-u', run.script, ...run.args], {
    cwd: run.cwd,
    env: { PYTHONUNBUFFERED: '1', TOKENIZERS_PARALLELISM: 'false', ...run.env },
    detached: true,
    reject: false,
    buffer: false,
    stdin: 'ignore',
    cleanup: false,
  });
  const pid = child.pid;
  let stopReason: TrainerFailed | null = null;
  let killTimer: NodeJS.Timeout | undefined;
  const stop = (reason: TrainerFailed) => {
    if (stopReason || pid === undefined) return;
    stopReason = reason;
    signalGroup(pid, 'SIGTERM');
    killTimer = setTimeout(() => signalGroup(pid, 'SIGKILL'), run.killGraceMs);
  };
  const onAbort = () => stop(new TrainerFailed('cancelled', String(run.signal?.reason ?? 'cancelled')));
  if (run.signal?.aborted) onAbort();
  run.signal?.addEventListener('abort', onAbort, { once: true });

  const stderrTail: string[] = [];
  createInterface({ input: child.stderr! }).on('line', (line) => {
    log.debug(line);
    if (line.trim()) stderrTail.push(line.trim());
    if (stderrTail.length > STDERR_TAIL_LINES) stderrTail.shift();
  });

  let done: DoneMessage | null = null;
  let reported: TrainerFailed | null = null;
  for await (const line of createInterface({ input: child.stdout! })) {
    if (!line.trim()) continue;
    const parsed = parseTrainerLine(line);
    if (!parsed.ok) {
      stop(new TrainerFailed('protocol', `the trainer broke its protocol (${parsed.problem}): ${clip(line, 120)}`));
      continue;
    }
    const message = parsed.message;
    if (message.type === 'done') done = message;
    if (message.type === 'error') reported = new TrainerFailed(message.kind, message.message);
    try {
      await run.onMessage(message);
    } catch (e) {
      log.warn(`could not report a ${message.type} message`, e);
    }
  }
  const result = await child;
  clearTimeout(killTimer);
  run.signal?.removeEventListener('abort', onAbort);

  // A run that said done has saved its adapter and moved latest: it succeeded, whatever came after (a cancel too late).
  if (done) return done;
  if (stopReason) throw stopReason;
  if (reported) throw reported;
  if (result.exitCode === undefined && !result.signal) {
    throw new TrainerFailed('failed', `could not start the trainer with ${run.python}: ${clip(result.shortMessage ?? 'unknown error', 200)}`);
  }
  const why = result.signal ? `was killed by ${result.signal}` : `exited with code ${result.exitCode}`;
  const last = stderrTail.at(-1);
  throw new TrainerFailed('failed', `the trainer ${why}${last ? `: ${clip(last, 200)}` : ''}`);
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // the group is gone already
  }
}

const clip = (s: string, n: number) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);
