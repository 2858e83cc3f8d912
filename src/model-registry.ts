/** Reads models/: the trained adapters, their facts from training_info.txt, and which one `latest` points at. */
import { link, mkdir, readdir, readFile, readlink, rename, stat, symlink, unlink, writeFile } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { InvalidInput, UserError } from './errors.ts';
import { parseJsonOrNull } from './jobs.ts';
import { isSafeModelName, parseModelName } from './model-names.ts';
import { bandById, bandFor, type Band } from './tables.ts';

export const MODEL_STATUSES = ['succeeded', 'running', 'failed', 'cancelled', 'interrupted', 'out_of_memory', 'disk_full'] as const;
export type ModelStatus = (typeof MODEL_STATUSES)[number] | 'unknown';

export interface ModelEntry {
  name: string;
  profile: string;
  base: string;
  createdAt: Date;
  sequence: number;
  status: ModelStatus;
  finalLoss: number | null;
  band: Band | null;
  /** The loss on the held-out conversations and its band; null for runs without an evaluation split. */
  evalLoss: number | null;
  evalBand: Band | null;
  rank: number | null;
  isLatest: boolean;
  info: Record<string, string>;
}

export function parseTrainingInfo(text: string): Record<string, string> {
  const facts: Record<string, string> = {};
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const at = line.indexOf(': ');
    if (at > 0) facts[line.slice(0, at).trim()] = line.slice(at + 2).trim();
  }
  return facts;
}

/**
 * Marks a folder whose trainer died without a word (killed by the watchdog or the kernel): `status: failed` and the
 * reason, written like the trainer writes it (a temporary file, then rename). A folder the trainer already marked is
 * left as it is. False when there is nothing to mark.
 */
export async function markFolderFailed(modelsDir: string, name: string, reason: string): Promise<boolean> {
  if (!isSafeModelName(name) || name === 'latest') return false;
  const file = join(modelsDir, name, 'training_info.txt');
  const text = await readFile(file, 'utf8').catch(() => null);
  if (text === null || parseTrainingInfo(text).status !== 'running') return false;
  const lines = text.split('\n').filter((l) => l && !/^(status|error|finished_at): /.test(l));
  lines.push('status: failed', `error: ${reason.replace(/[\r\n]+/g, ' ')}`, `finished_at: ${new Date().toISOString()}`);
  const tmp = join(modelsDir, name, '.training_info.txt.runner');
  await writeFile(tmp, `${lines.join('\n')}\n`, 'utf8');
  await rename(tmp, file);
  return true;
}

/** The file that names a models folder: hosts that read the same id mount the same folder. */
export const MODELS_ID_FILE = '.models-id';

/**
 * The id of the models folder `dir`, made by whichever process first looks (O_EXCL: two first looks agree). A runner
 * reports it in its heartbeat and the bot compares it with its own: a runner host whose folder is not the shared one
 * (a local disk where the shared mount should be) shows in /runners before its models go missing.
 */
export async function modelsFolderId(dir: string): Promise<string> {
  const file = join(dir, MODELS_ID_FILE);
  const read = async () => (await readFile(file, 'utf8')).trim();
  try {
    return await read();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  await mkdir(dir, { recursive: true });
  // written whole under a private name, then linked into place: a reader never sees an empty id
  const tmp = join(dir, `.models-id.${process.pid}.${randomUUID()}`);
  await writeFile(tmp, `${randomUUID()}\n`);
  try {
    await link(tmp, file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
  return read();
}

export class ModelRegistry {
  constructor(readonly dir: string) {}

  /** This folder's id (see modelsFolderId); null when it cannot be read or made. */
  folderId(): Promise<string | null> {
    return modelsFolderId(this.dir).catch(() => null);
  }

  async latestName(): Promise<string | null> {
    try {
      return (await readlink(join(this.dir, 'latest'))).replace(/\/+$/, '').split('/').pop() ?? null;
    } catch {
      return null;
    }
  }

  /**
   * One model by folder name, or `latest`. Throws a UserError that lists the names when there is no such model, and
   * refuses anything that is not a plain folder name (a path, `..`).
   */
  async find(name: string): Promise<ModelEntry> {
    return (await this.findAll([name]))[0]!;
  }

  /** Several models by name, from one read of the folder (as find, each). */
  async findAll(names: string[]): Promise<ModelEntry[]> {
    if (!names.every(isSafeModelName)) throw new InvalidInput('a model is named by its folder name (or latest), not a path');
    const models = await this.list();
    return names.map((name) => {
      const found = models.find((m) => (name === 'latest' ? m.isLatest : m.name === name));
      if (found) return found;
      if (name === 'latest') throw new UserError('no model is latest yet; /train quick_test makes one');
      const listed = models.slice(0, 10).map((m) => m.name);
      throw new UserError(`no model '${name}'; ${listed.length ? `try latest or one of ${listed.join(', ')}` : 'there are no models yet'}`);
    });
  }

  /**
   * Points `latest` at a model (a rollback), atomically as the trainer does: a new link beside it, renamed over the
   * old one. Only a model whose run succeeded; returns the model latest pointed at before.
   */
  async promote(name: string): Promise<{ model: ModelEntry; previous: string | null }> {
    const model = await this.find(name);
    if (model.status !== 'succeeded') throw new InvalidInput(`${model.name} did not finish training (${model.status}); only a finished model can be latest`);
    const previous = await this.latestName();
    const tmp = join(this.dir, `.latest.bot.${process.pid}`);
    await unlink(tmp).catch(() => undefined);
    await symlink(model.name, tmp);
    await rename(tmp, join(this.dir, 'latest'));
    return { model, previous };
  }

  /** Moves a model to archive/ (out of /models list, kept on disk). Not latest: promote another first. */
  async archive(name: string): Promise<ModelEntry> {
    if (name === 'latest') throw new InvalidInput('name the model itself, not latest');
    const model = await this.find(name);
    if (model.isLatest) throw new InvalidInput(`${model.name} is latest; /models promote another model first`);
    if (model.status === 'running') throw new InvalidInput(`${model.name} is still training`);
    await mkdir(join(this.dir, 'archive'), { recursive: true });
    const target = join(this.dir, 'archive', model.name);
    if (await stat(target).then(() => true, () => false)) throw new InvalidInput(`archive/ already holds a ${model.name}`);
    await rename(join(this.dir, model.name), target);
    return model;
  }

  /** A model's step losses, from loss_history.json (null where a loss was not finite); empty when it has none. */
  async losses(name: string): Promise<(number | null)[]> {
    const values = await readFile(join(this.dir, name, 'loss_history.json'), 'utf8').then(parseJsonOrNull, () => null);
    return Array.isArray(values) ? values.map((x) => (typeof x === 'number' && Number.isFinite(x) ? x : null)) : [];
  }

  /** Bytes on disk under a model's folder. */
  async size(name: string): Promise<number> {
    let total = 0;
    for await (const file of filesUnder(join(this.dir, name))) total += (await stat(file)).size;
    return total;
  }

  /** Every model folder (archive/ and hidden entries left out), newest first. */
  async list(): Promise<ModelEntry[]> {
    let entries;
    try {
      entries = await readdir(this.dir, { withFileTypes: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw e;
    }
    const latest = await this.latestName();
    const models: ModelEntry[] = [];
    for (const entry of entries) {
      if (!entry.isDirectory() || entry.name === 'archive' || entry.name.startsWith('.')) continue;
      const parsed = parseModelName(entry.name);
      if (!parsed) continue;
      const info = await readFile(join(this.dir, entry.name, 'training_info.txt'), 'utf8')
        .then(parseTrainingInfo)
        .catch(() => ({}) as Record<string, string>);
      const status = ((MODEL_STATUSES as readonly string[]).includes(info.status ?? '')
        ? info.status
        : info.final_loss !== undefined ? 'succeeded' : 'unknown') as ModelStatus;
      const loss = info.final_loss !== undefined ? Number(info.final_loss) : null;
      models.push({
        name: entry.name,
        ...parsed,
        status,
        finalLoss: loss,
        band: status !== 'succeeded' ? null : info.band ? bandById(info.band) : bandFor(loss),
        evalLoss: info.eval_loss !== undefined ? Number(info.eval_loss) : null,
        evalBand: status === 'succeeded' && info.eval_band ? bandById(info.eval_band) : null,
        rank: info.lora_r ? Number(info.lora_r) : null,
        isLatest: entry.name === latest,
        info,
      });
    }
    return models.sort(
      (a, b) => b.createdAt.getTime() - a.createdAt.getTime() || b.sequence - a.sequence || a.name.localeCompare(b.name),
    );
  }
}

/**
 * The files under `folder`, depth first; `skip(name, atTop)` leaves an entry out (a folder with all it holds).
 * Links are not followed.
 */
export async function* filesUnder(folder: string, skip: (name: string, atTop: boolean) => boolean = () => false, dir = folder): AsyncGenerator<string> {
  for (const e of await readdir(dir, { withFileTypes: true })) {
    if (skip(e.name, dir === folder)) continue;
    if (e.isDirectory()) yield* filesUnder(folder, skip, join(dir, e.name));
    else if (e.isFile()) yield join(dir, e.name);
  }
}
