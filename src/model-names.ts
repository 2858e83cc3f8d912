/** Model folder names, the seed's `{base}_{profile}_{YYYYMMDD_HHMM}` (plus `-N` when a minute already had one). */
import { PROFILE_NAMES } from './tables.ts';

export interface ModelName {
  base: string;
  profile: string;
  /** Local wall-clock time of the run's start, to the minute. */
  createdAt: Date;
  /** 1 for the first folder of that minute, 2 for `-2`, ... */
  sequence: number;
}

const pad = (n: number, width = 2) => String(n).padStart(width, '0');

export function formatModelName(base: string, profile: string, when: Date, sequence = 1): string {
  const stamp = `${when.getFullYear()}${pad(when.getMonth() + 1)}${pad(when.getDate())}_${pad(when.getHours())}${pad(when.getMinutes())}`;
  return `${base}_${profile}_${stamp}${sequence > 1 ? `-${sequence}` : ''}`;
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
