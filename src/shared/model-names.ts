/**
 * Model folder names, the seed's `{base}_{profile}_{YYYYMMDD_HHMM}` (plus `-N` when a minute already had one). The
 * trainer makes them (gpu-runner/trainer/models_dir.py); the bot reads them.
 */
import { PROFILE_NAMES } from './tables.ts';

export interface ModelName {
  base: string;
  profile: string;
  /** Local wall-clock time of the run's start, to the minute. */
  createdAt: Date;
  /** 1 for the first folder of that minute, 2 for `-2`, ... */
  sequence: number;
}

export function parseModelName(name: string): ModelName | null {
  const profiles = [...PROFILE_NAMES].sort((a, b) => b.length - a.length).join('|');
  const m = new RegExp(`^(.+)_(${profiles})_(\\d{4})(\\d{2})(\\d{2})_(\\d{2})(\\d{2})(?:-(\\d+))?$`).exec(name);
  if (!m) return null;
  const [, base, profile, y, mo, d, h, mi, seq] = m;
  const createdAt = new Date(+y!, +mo! - 1, +d!, +h!, +mi!);
  if (createdAt.getMonth() !== +mo! - 1 || createdAt.getDate() !== +d! || +h! > 23 || +mi! > 59) return null;
  return { base: base!, profile: profile!, createdAt, sequence: seq ? +seq : 1 };
}

/** A name a user may pass to a command: a folder name, never a path. */
export function isSafeModelName(name: string): boolean {
  return /^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$/.test(name) && !name.includes('..');
}
