/** Starts tests/helpers/http-relay.mjs (why: see there) in front of a double's HTTP port. */
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';

export interface Relay {
  port: number;
  stop(): Promise<void>;
}

export async function startRelay(targetPort: number): Promise<Relay> {
  const child = fork(fileURLToPath(new URL('./http-relay.mjs', import.meta.url)), [String(targetPort)], {
    stdio: 'inherit',
    execArgv: [],
  });
  const [port] = (await once(child, 'message')) as [number];
  return {
    port,
    async stop() {
      if (child.exitCode !== null) return;
      const exited = once(child, 'exit');
      child.kill();
      await exited;
    },
  };
}
