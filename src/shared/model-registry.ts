/** Reads models/: the trained adapters, their facts from training_info.txt, and which one `latest` points at. */
import type { Dirent } from 'node:fs';
import {
  link,
  lstat,
  mkdir,
  readdir,
  readFile,
  readlink,
  rename,
  stat,
  symlink,
  unlink,
  writeFile,
} from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { InvalidInput, UserError } from './errors.ts';
import { parseJsonOrNull } from './jobs.ts';
import { isSafeModelName, parseModelName } from './model-names.ts';
import { bandById, bandFor, type Band } from './tables.ts';

export const MODEL_STATUSES = [
  'succeeded',
  'running',
  'failed',
  'cancelled',
  'interrupted',
  'out_of_memory',
  'disk_full',
] as const;
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

/** The folder inside models/ that holds the archived models: never a model itself. */
export const ARCHIVE_DIR = 'archive';
/** How many models a refusal suggests. */
const SUGGESTED = 10;

/** A name that may be a model's folder in models/: a plain folder name, neither latest nor archive/. */
function isModelFolderName(name: string): boolean {
  return isSafeModelName(name) && name !== 'latest' && name !== ARCHIVE_DIR;
}

/** The models an ask may use (their run succeeded), newest first as `models` are, at most SUGGESTED. */
export function usableNames(models: readonly ModelEntry[]): string[] {
  return models
    .filter((m) => m.status === 'succeeded')
    .slice(0, SUGGESTED)
    .map((m) => m.name);
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
 * Writes the end of a run that its trainer could not write itself: `status` (failed when the trainer died without a
 * word, cancelled when a cancel came while no trainer held the job), the reason, and the time, written as the trainer
 * writes it (a temporary file, then rename). Only a folder still `running` changes, or, for a cancel, one left
 * `interrupted` for a resume that will not come: one the trainer marked otherwise is left as it is. False when there
 * is nothing to mark.
 */
export async function markFolder(
  modelsDir: string,
  name: string,
  status: 'failed' | 'cancelled',
  reason: string,
): Promise<boolean> {
  if (!isModelFolderName(name)) return false;
  const file = join(modelsDir, name, 'training_info.txt');
  const text = await readFile(file, 'utf8').catch(() => null);
  const was = text === null ? undefined : parseTrainingInfo(text).status;
  if (text === null || !(was === 'running' || (was === 'interrupted' && status === 'cancelled'))) return false;
  const lines = text.split('\n').filter((l) => l && !/^(status|error|finished_at): /.test(l));
  lines.push(
    `status: ${status}`,
    `error: ${reason.replace(/[\r\n]+/g, ' ')}`,
    `finished_at: ${new Date().toISOString()}`,
  );
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

  /** The folder latest points at; null without a link, or when it points at archive/ or into it. */
  async latestName(): Promise<string | null> {
    try {
      const parts = (await readlink(join(this.dir, 'latest'))).replace(/\/+$/, '').split('/');
      const name = parts.pop() ?? '';
      return isModelFolderName(name) && parts.at(-1) !== ARCHIVE_DIR ? name : null;
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
    if (!names.every(isSafeModelName))
      throw new InvalidInput('a model is named by its folder name (or latest), not a path');
    const models = await this.list();
    return names.map((name) => {
      const found = models.find((m) => (name === 'latest' ? m.isLatest : m.name === name));
      if (found) return found;
      if (name === 'latest') throw new UserError('no model is latest yet; /train quick_test makes one');
      const listed = usableNames(models);
      const hint = listed.length
        ? `try latest or one of ${listed.join(', ')}`
        : models.length
          ? 'no model has finished training yet'
          : 'there are no models yet';
      if (name === ARCHIVE_DIR)
        throw new UserError(`archive/ holds the archived models and is not one (/models archived lists them); ${hint}`);
      throw new UserError(`no model '${name}'; ${hint}`);
    });
  }

  /**
   * The model an /ask or a /chat turn names, checked before anything is queued: null for `base` (no adapter), else
   * latest's model or a model whose run succeeded. Anything else is refused with one line that names the usable
   * models, newest first. Reads only the one folder when the name is good.
   */
  async forAsk(name: string): Promise<ModelEntry | null> {
    if (name === 'base') return null;
    if (!isSafeModelName(name))
      throw new InvalidInput('a model is named by its folder name (or latest, or base), not a path');
    const latest = await this.latestName();
    if (name === 'latest' && latest === null)
      throw new UserError('no model is latest yet; /train quick_test makes one');
    const folder = name === 'latest' ? latest! : name;
    const model = isModelFolderName(folder) ? await this.entry(this.dir, folder, latest) : null;
    if (model && (model.status === 'succeeded' || name === 'latest')) return model;
    if (name === 'latest')
      throw new UserError(`latest points at ${folder}, which is gone; /models promote another model`);
    const usable = usableNames(await this.list());
    const known = `known: ${[...(latest !== null ? ['latest'] : []), 'base', ...usable].join(', ')}${usable.length ? '' : ' (/train quick_test makes a model)'}`;
    if (name === ARCHIVE_DIR) throw new UserError(`archive/ holds the archived models and is not one; ${known}`);
    if (!model) throw new UserError(`no model '${name}'; ${known}`);
    throw new UserError(`${name} did not finish training (${model.status}), so it cannot answer; ${known}`);
  }

  /** Marks the end of a run no trainer will finish (see markFolder); false when the folder needs no mark. */
  markEnded(name: string, status: 'failed' | 'cancelled', reason: string): Promise<boolean> {
    return markFolder(this.dir, name, status, reason);
  }

  /**
   * Points `latest` at a model (a rollback), atomically as the trainer does: a new link beside it, renamed over the
   * old one. Only a model whose run succeeded; returns the model latest pointed at before.
   */
  async promote(name: string): Promise<{ model: ModelEntry; previous: string | null }> {
    const model = await this.find(name);
    if (model.status !== 'succeeded')
      throw new InvalidInput(
        `${model.name} did not finish training (${model.status}); only a finished model can be latest`,
      );
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
    await mkdir(join(this.dir, ARCHIVE_DIR), { recursive: true });
    const target = join(this.dir, ARCHIVE_DIR, model.name);
    if (
      await stat(target).then(
        () => true,
        () => false,
      )
    )
      throw new InvalidInput(`archive/ already holds a ${model.name}`);
    await rename(join(this.dir, model.name), target);
    return model;
  }

  /** The archived models (in archive/), newest first. */
  archived(): Promise<ModelEntry[]> {
    return this.read(join(this.dir, ARCHIVE_DIR), null);
  }

  /**
   * Moves a model back from archive/ into models/ (into /models list), in one rename: the folder is in one place or
   * the other, never half-moved. Refuses a name models/ already holds, and one archive/ does not hold.
   */
  async restore(name: string): Promise<ModelEntry> {
    if (!isSafeModelName(name)) throw new InvalidInput('a model is named by its folder name, not a path');
    const target = join(this.dir, name);
    const notArchived = `archive/ holds no model '${name}'; /models archived lists what it holds`;
    const inModels = `${name} is in models/ already (/models list shows it); nothing was moved`;
    if (!isModelFolderName(name)) throw new InvalidInput(notArchived);
    if (
      await lstat(target).then(
        () => true,
        () => false,
      )
    )
      throw new InvalidInput(inModels);
    const model = await this.entry(join(this.dir, ARCHIVE_DIR), name, null);
    if (!model) throw new InvalidInput(notArchived);
    try {
      await rename(join(this.dir, ARCHIVE_DIR, name), target);
    } catch (e) {
      // another restore (or an archive) got there first
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') throw new InvalidInput(notArchived);
      if (code === 'ENOTEMPTY' || code === 'EEXIST') throw new InvalidInput(inModels);
      throw e;
    }
    return model;
  }

  /** A model's step losses, from loss_history.json (null where a loss was not finite); empty when it has none. */
  async losses(name: string): Promise<(number | null)[]> {
    if (!isModelFolderName(name)) return [];
    const values = await readFile(join(this.dir, name, 'loss_history.json'), 'utf8').then(parseJsonOrNull, () => null);
    return Array.isArray(values) ? values.map((x) => (typeof x === 'number' && Number.isFinite(x) ? x : null)) : [];
  }

  /** Bytes on disk under a model's folder. */
  async size(name: string): Promise<number> {
    if (!isModelFolderName(name)) return 0;
    let total = 0;
    for await (const file of filesUnder(join(this.dir, name))) total += (await stat(file)).size;
    return total;
  }

  /** Every model folder (archive/ and hidden entries left out), newest first. */
  async list(): Promise<ModelEntry[]> {
    return this.read(this.dir, await this.latestName());
  }

  /** The model folders in `dir` (models/ or archive/), newest first; `latest`: the name latest points at. */
  private async read(dir: string, latest: string | null): Promise<ModelEntry[]> {
    let entries: Dirent[];
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw e;
    }
    const models: ModelEntry[] = [];
    for (const e of entries) {
      const model = e.isDirectory() && isModelFolderName(e.name) ? await this.entry(dir, e.name, latest) : null;
      if (model) models.push(model);
    }
    return models.sort(
      (a, b) =>
        b.createdAt.getTime() - a.createdAt.getTime() || b.sequence - a.sequence || a.name.localeCompare(b.name),
    );
  }

  /** One model folder of `dir` with its facts; null when there is no such folder or its name is not a model's. */
  private async entry(dir: string, name: string, latest: string | null): Promise<ModelEntry | null> {
    const parsed = parseModelName(name);
    // lstat: a link is not a model folder (as readdir's entries in read())
    if (
      !parsed ||
      !(await lstat(join(dir, name)).then(
        (s) => s.isDirectory(),
        () => false,
      ))
    )
      return null;
    const info = await readFile(join(dir, name, 'training_info.txt'), 'utf8')
      .then(parseTrainingInfo)
      .catch(() => ({}) as Record<string, string>);
    const status = (
      (MODEL_STATUSES as readonly string[]).includes(info.status ?? '')
        ? info.status
        : info.final_loss !== undefined
          ? 'succeeded'
          : 'unknown'
    ) as ModelStatus;
    const loss = info.final_loss !== undefined ? Number(info.final_loss) : null;
    return {
      name,
      ...parsed,
      status,
      finalLoss: loss,
      band: status !== 'succeeded' ? null : info.band ? bandById(info.band) : bandFor(loss),
      evalLoss: info.eval_loss !== undefined ? Number(info.eval_loss) : null,
      evalBand: status === 'succeeded' && info.eval_band ? bandById(info.eval_band) : null,
      rank: info.lora_r ? Number(info.lora_r) : null,
      isLatest: name === latest,
      info,
    };
  }
}

/**
 * The files under `folder`, depth first; `skip(name, atTop)` leaves an entry out (a folder with all it holds).
 * Links are not followed.
 */
export async function* filesUnder(
  folder: string,
  skip: (name: string, atTop: boolean) => boolean = () => false,
  dir = folder,
): AsyncGenerator<string> {
  for (const e of await readdir(dir, { withFileTypes: true })) {
    if (skip(e.name, dir === folder)) continue;
    if (e.isDirectory()) yield* filesUnder(folder, skip, join(dir, e.name));
    else if (e.isFile()) yield join(dir, e.name);
  }
}
