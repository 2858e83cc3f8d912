/**
 * For runner hosts that train on a disk of their own (LOCAL_MODELS_DIR): a finished model is copied to the shared
 * models folder (MODELS_DIR) before `latest` moves to it. Its files (not its checkpoints, which stay for a resume on
 * this host) go into a hidden folder beside the models, each hashed (SHA-256) on the way and read back and hashed
 * again, synced to the disk, listed in SHA256SUMS (`sha256sum -c SHA256SUMS` checks them), and the folder is renamed
 * into place in one step: a reader never sees half a model. A name another host took meanwhile gets `-2`, `-3`…
 * (reserved by mkdir, as the trainer reserves its folders).
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readFile, rename, rm, rmdir, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { filesUnder, ModelRegistry } from '../src/shared/model-registry.ts';

const SUMS_FILE = 'SHA256SUMS';
const INFO_FILE = 'training_info.txt';

export class PublishFailed extends Error {
  override name = 'PublishFailed';
}

/** The files of a model folder that make the model: not its checkpoints, its lock or half-written temporaries. */
async function modelFiles(folder: string): Promise<string[]> {
  const found: string[] = [];
  for await (const file of filesUnder(
    folder,
    (name, atTop) => name.startsWith('.') || (atTop && name.startsWith('checkpoint-')),
  ))
    found.push(file);
  return found.sort();
}

async function sha256(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Copies `from` to a new file `to`, hashing what it reads, and syncs `to` to the disk: its hash and size. */
async function copyHashed(from: string, to: string): Promise<{ sum: string; bytes: number }> {
  const hash = createHash('sha256');
  const out = await open(to, 'wx');
  let bytes = 0;
  try {
    for await (const chunk of createReadStream(from)) {
      const buf = chunk as Buffer;
      hash.update(buf);
      bytes += buf.length;
      for (let done = 0; done < buf.length; ) done += (await out.write(buf, done, buf.length - done)).bytesWritten;
    }
    await out.sync();
  } finally {
    await out.close();
  }
  return { sum: hash.digest('hex'), bytes };
}

/** SHA256SUMS as `sha256sum` writes it, so `sha256sum -c SHA256SUMS` checks a folder. */
const sumsText = (sums: Map<string, string>) => [...sums].map(([rel, sum]) => `${sum}  ${rel}\n`).join('');

export interface Published {
  name: string;
  files: number;
  bytes: number;
}

/**
 * Publishes `localDir/name` to `sharedDir`, then moves the shared `latest` to it when `moveLatest`. `afterCopy`
 * lets a test reach into the copy before it is checked (a disk that corrupts what it was given).
 */
export async function publishModel(opts: {
  localDir: string;
  sharedDir: string;
  name: string;
  moveLatest: boolean;
  afterCopy?: (incoming: string) => Promise<void>;
}): Promise<Published> {
  const from = join(opts.localDir, opts.name);
  const incoming = join(opts.sharedDir, `.incoming-${opts.name}-${randomBytes(4).toString('hex')}`);
  await mkdir(incoming, { recursive: true });
  let reserved: string | null = null;
  try {
    const files = await modelFiles(from);
    const sums = new Map<string, string>();
    let bytes = 0;
    for (const file of files) {
      const rel = relative(from, file);
      await mkdir(dirname(join(incoming, rel)), { recursive: true });
      const copied = await copyHashed(file, join(incoming, rel));
      sums.set(rel, copied.sum);
      bytes += copied.bytes;
    }
    await opts.afterCopy?.(incoming);
    for (const [rel, sum] of sums) {
      if ((await sha256(join(incoming, rel))) !== sum) {
        throw new PublishFailed(`${rel} changed on its way to the shared models folder (SHA-256 differs)`);
      }
    }
    // Published already (a runner that died after the copy, and the job resumed the finished folder): the same files.
    if ((await readFile(join(opts.sharedDir, opts.name, SUMS_FILE), 'utf8').catch(() => null)) === sumsText(sums)) {
      await rm(incoming, { recursive: true, force: true });
      if (opts.moveLatest) await new ModelRegistry(opts.sharedDir).promote(opts.name);
      return { name: opts.name, files: files.length, bytes };
    }
    // The name this host's trainer chose may be taken by another host's model of the same minute: the next free one,
    // reserved with an atomic mkdir as the trainer reserves its folders, then replaced by the copy in one rename.
    for (let n = 1; ; n++) {
      const name = n === 1 ? opts.name : `${opts.name}-${n}`;
      try {
        await mkdir(join(opts.sharedDir, name));
        reserved = join(opts.sharedDir, name);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EEXIST') continue;
        throw e;
      }
      if (n > 1) {
        const info = join(incoming, INFO_FILE);
        const text = (await readFile(info, 'utf8')).replace(/^model_name: .*$/m, `model_name: ${name}`);
        await writeFile(info, text);
        sums.set(INFO_FILE, createHash('sha256').update(text).digest('hex'));
      }
      await writeFile(join(incoming, SUMS_FILE), sumsText(sums));
      await rename(incoming, join(opts.sharedDir, name));
      if (opts.moveLatest) await new ModelRegistry(opts.sharedDir).promote(name);
      return { name, files: files.length, bytes };
    }
  } catch (e) {
    await rm(incoming, { recursive: true, force: true }).catch(() => undefined);
    // the name reserved for the copy, if the copy never took its place (rmdir leaves a folder that is not empty)
    if (reserved) await rmdir(reserved).catch(() => undefined);
    throw e;
  }
}
