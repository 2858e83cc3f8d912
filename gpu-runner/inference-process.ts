/**
 * The resident inference worker (gpu-runner/inference/worker.py) as seen from the runner: started on the first ask
 * and kept, one request at a time, its JSON-lines events checked with zod; restarted by the next ask if it died.
 */
import { execa, type ResultPromise } from 'execa';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { z } from 'zod';
import { REPO_ROOT, type Config } from '../src/shared/config.ts';
import { parseJsonOrNull } from '../src/shared/jobs.ts';
import { logger } from '../src/shared/log.ts';

const log = logger('inference');
export const WORKER_SCRIPT = join(REPO_ROOT, 'gpu-runner/inference/worker.py');

const Event = z.discriminatedUnion('type', [
  z.object({ v: z.literal(1), type: z.literal('ready'), load_s: z.number() }),
  z.object({ v: z.literal(1), type: z.literal('token'), id: z.string(), text: z.string() }),
  z.object({
    v: z.literal(1),
    type: z.literal('done'),
    id: z.string(),
    model: z.string(),
    answer: z.string(),
    reasoning: z.string(),
    complete: z.boolean(),
    tokens: z.number().int(),
    ttft_s: z.number(),
    duration_s: z.number(),
  }),
  z.object({ v: z.literal(1), type: z.literal('error'), id: z.string(), kind: z.string(), message: z.string() }),
]);
type Done = Extract<z.infer<typeof Event>, { type: 'done' }>;

/** The worker refused the request (a bad name, an empty prompt): the same request would fail again. */
export class AskRefused extends Error {
  override name = 'AskRefused';
}

export interface AskRequest {
  model: string;
  messages: { role: string; content: string }[];
  reasoning_effort: string;
  max_new_tokens?: number;
  seed?: number;
}

interface Pending {
  onToken: (text: string) => void;
  resolve: (done: Done) => void;
  reject: (e: Error) => void;
}

export class InferenceProcess {
  private child: ResultPromise | null = null;
  private ready: Promise<void> | null = null;
  private readonly pending = new Map<string, Pending>();
  private nextId = 1;
  /** How many times the worker process was started (a test proves it stays one). */
  starts = 0;

  /** The worker's process id, while one runs. */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  constructor(private readonly config: Config) {}

  async ask(request: AskRequest, onToken: (text: string) => void): Promise<Done> {
    await this.start();
    const id = String(this.nextId++);
    const done = new Promise<Done>((resolve, reject) => this.pending.set(id, { onToken, resolve, reject }));
    this.child!.stdin!.write(`${JSON.stringify({ id, max_new_tokens: this.config.askMaxNewTokens, ...request })}\n`);
    return done;
  }

  async stop(): Promise<void> {
    const child = this.child;
    this.child = null;
    this.ready = null;
    if (child) {
      child.stdin?.end();
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await child;
      clearTimeout(timer);
    }
  }

  private start(): Promise<void> {
    if (this.ready) return this.ready;
    const args = [
      '-u',
      WORKER_SCRIPT,
      `--models-dir=${this.config.modelsDir}`,
      `--base-model=${this.config.baseModel}`,
      `--backend=${this.config.trainerBackend}`,
    ];
    const child = execa(this.config.python, args, {
      cwd: REPO_ROOT,
      reject: false,
      buffer: false,
      stdin: 'pipe',
      env: {
        PYTHONUNBUFFERED: '1',
        TOKENIZERS_PARALLELISM: 'false',
        // the runner's GPU, as the trainer gets --gpu: a host's runners must not all load their models onto GPU 0
        ...(this.config.gpuId !== undefined && {
          CUDA_VISIBLE_DEVICES: String(this.config.gpuId),
          CUDA_DEVICE_ORDER: 'PCI_BUS_ID',
        }),
      },
    });
    this.child = child;
    this.starts++;
    createInterface({ input: child.stderr! }).on('line', (line) => log.debug(line));
    this.ready = new Promise<void>((resolve, reject) => {
      createInterface({ input: child.stdout! }).on('line', (line) => {
        const parsed = Event.safeParse(parseJsonOrNull(line));
        if (!parsed.success) return log.warn(`the inference worker broke its protocol: ${line.slice(0, 120)}`);
        const e = parsed.data;
        if (e.type === 'ready') {
          log.info(`inference worker ready in ${e.load_s} s`);
          return resolve();
        }
        const p = this.pending.get(e.id);
        if (!p) return;
        if (e.type === 'token') return p.onToken(e.text);
        this.pending.delete(e.id);
        if (e.type === 'done') p.resolve(e);
        else p.reject(e.kind === 'failed' ? new Error(e.message) : new AskRefused(e.message));
      });
      void child.then((result) => {
        const why = new Error(`the inference worker stopped (${result.signal ?? `exit ${result.exitCode}`})`);
        reject(why);
        for (const p of this.pending.values()) p.reject(why);
        this.pending.clear();
        if (this.child === child) {
          this.child = null;
          this.ready = null; // the next ask starts a new one
        }
      });
    });
    return this.ready;
  }
}
