/**
 * Runs train.py as a child in its own process group and turns its stdout protocol into typed messages. The command
 * line is an argument array (never a shell); a cancel signals the whole group, so no grandchild keeps the pipe open.
 * A cancel sends SIGTERM (the folder is marked cancelled); an interrupt (the runner is going away) sends SIGINT (the
 * folder is marked interrupted, and the job resumes elsewhere). A watchdog stops a trainer that prints nothing.
 */
import { execa } from 'execa';
import { createInterface } from 'node:readline';
import { logger } from '../src/shared/log.ts';
import { parseTrainerLine, type DoneMessage, type TrainerMessage } from './trainer-protocol.ts';

const log = logger('trainer');
const STDERR_TAIL_LINES = 20;

export type TrainerFailureKind =
  | 'bad_input'
  | 'cancelled'
  | 'interrupted'
  | 'out_of_memory'
  | 'disk_full'
  | 'hung'
  | 'failed'
  | 'protocol';

/** The abort reason that interrupts a trainer (resumable) rather than cancelling it. */
export const INTERRUPT = 'interrupted';

/** The trainer did not finish: `message` is one line for the channel. */
export class TrainerFailed extends Error {
  override name = 'TrainerFailed';
  constructor(
    readonly kind: TrainerFailureKind,
    message: string,
    /** The trainer said so itself (an error line), and marked its folder; false: it died or was stopped unheard. */
    readonly reported = false,
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
  /** Aborting it stops the trainer: SIGTERM (SIGINT when the reason is INTERRUPT) to its group, SIGKILL after killGraceMs. */
  signal?: AbortSignal;
  killGraceMs: number;
  /** The watchdog: no line on stdout or stderr for this long stops the trainer as hung. */
  stallTimeoutMs?: number;
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
  const stop = (reason: TrainerFailed, signal: NodeJS.Signals = 'SIGTERM') => {
    if (stopReason || pid === undefined) return;
    stopReason = reason;
    signalGroup(pid, signal);
    killTimer = setTimeout(() => signalGroup(pid, 'SIGKILL'), run.killGraceMs);
  };
  const onAbort = () =>
    run.signal?.reason === INTERRUPT
      ? stop(new TrainerFailed('interrupted', 'interrupted: the runner is going away'), 'SIGINT')
      : stop(new TrainerFailed('cancelled', 'stopped on request'));
  if (run.signal?.aborted) onAbort();
  run.signal?.addEventListener('abort', onAbort, { once: true });

  // one timer, pushed back by every line the trainer prints (stdout or stderr)
  const watchdog = run.stallTimeoutMs
    ? setTimeout(() => {
        const s = Math.round(run.stallTimeoutMs! / 1000);
        stop(
          new TrainerFailed(
            'hung',
            `the trainer printed nothing for ${s} s and was stopped (TRAINER_STALL_TIMEOUT_S=${s}); /train again, and raise the setting if the model loads slowly`,
          ),
          'SIGKILL',
        );
      }, run.stallTimeoutMs)
    : undefined;
  const heard = () => {
    if (!stopReason) watchdog?.refresh();
  };

  const stderrTail: string[] = [];
  createInterface({ input: child.stderr! }).on('line', (line) => {
    heard();
    log.debug(line);
    if (line.trim()) stderrTail.push(line.trim());
    if (stderrTail.length > STDERR_TAIL_LINES) stderrTail.shift();
  });

  let done: DoneMessage | null = null;
  let reported: TrainerFailed | null = null;
  for await (const line of createInterface({ input: child.stdout! })) {
    heard();
    if (!line.trim()) continue;
    const parsed = parseTrainerLine(line);
    if (!parsed.ok) {
      stop(new TrainerFailed('protocol', `the trainer broke its protocol (${parsed.problem}): ${clip(line, 120)}`));
      continue;
    }
    const message = parsed.message;
    if (message.type === 'done') done = message;
    if (message.type === 'error') reported = new TrainerFailed(message.kind, message.message, true);
    try {
      await run.onMessage(message);
    } catch (e) {
      log.warn(`could not report a ${message.type} message`, e);
    }
  }
  const result = await child;
  clearTimeout(killTimer);
  clearTimeout(watchdog);
  run.signal?.removeEventListener('abort', onAbort);
  // Whatever the trainer left in its group (data loader workers, a compiler) goes with it: the GPU is free again.
  if (pid !== undefined) signalGroup(pid, 'SIGKILL');

  // A run that said done has saved its adapter and moved latest: it succeeded, whatever came after (a cancel too late).
  if (done) return done;
  if (stopReason) throw stopReason;
  if (reported) throw reported;
  if (result.exitCode === undefined && !result.signal) {
    throw new TrainerFailed(
      'failed',
      `could not start the trainer with ${run.python}: ${clip(result.shortMessage ?? 'unknown error', 200)}`,
    );
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
