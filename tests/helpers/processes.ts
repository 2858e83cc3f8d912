/** The command lines of this machine's processes, read from /proc (no `ps` needed), and whether a pid lives. */
import { readdirSync, readFileSync } from 'node:fs';

export function commandLines(): string[] {
  const lines: string[] = [];
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
      if (args.length) lines.push(`${pid} ${args.join(' ')} `);
    } catch {
      // gone meanwhile
    }
  }
  return lines;
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
