/** A small leveled logger on stderr that blanks every configured secret before a line is written. */
type Level = 'debug' | 'info' | 'warn' | 'error';
const ORDER: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

let threshold: Level = 'warn';
let secrets: string[] = [];
let sink: (line: string) => void = (line) => process.stderr.write(`${line}\n`);

export function configureLog(options: { level?: Level; secrets?: string[]; sink?: (line: string) => void }): void {
  if (options.level) threshold = options.level;
  if (options.secrets) secrets = [...new Set(options.secrets)].sort((a, b) => b.length - a.length);
  if (options.sink) sink = options.sink;
}

/** Replaces every known secret, and the password of any URL, with ***. */
export function redact(text: string): string {
  let out = text;
  for (const s of secrets) out = out.split(s).join('***');
  return out.replace(/(\b[a-z][a-z0-9+.-]*:\/\/[^:/@\s]*:)[^@\s]+@/gi, '$1***@');
}

function write(level: Level, scope: string, message: string, error?: unknown): void {
  if (ORDER[level] < ORDER[threshold]) return;
  const detail =
    error instanceof Error ? `\n${error.stack ?? error.message}` : error !== undefined ? ` ${String(error)}` : '';
  sink(redact(`${new Date().toISOString()} ${level.padEnd(5)} [${scope}] ${message}${detail}`));
}

export interface Logger {
  debug(message: string): void;
  info(message: string): void;
  warn(message: string, error?: unknown): void;
  error(message: string, error?: unknown): void;
}

export function logger(scope: string): Logger {
  return {
    debug: (m) => write('debug', scope, m),
    info: (m) => write('info', scope, m),
    warn: (m, e) => write('warn', scope, m, e),
    error: (m, e) => write('error', scope, m, e),
  };
}
