/** The newest state, sent one at a time: progress to the queue, heartbeats to the fleet. */
import { logger } from '../src/shared/log.ts';

const log = logger('runner');

/**
 * Runs `send` for the newest state, one call at a time: a slow or unreachable Redis never holds up the trainer.
 * `push` asks for a send (one more after the one in flight, however many pushes came meanwhile); `flush` waits for
 * the last.
 */
export function latestOnly(send: () => Promise<void>): { push(): void; flush(): Promise<void> } {
  let running: Promise<void> | null = null;
  let again = false;
  const loop = async () => {
    do {
      again = false;
      await send().catch((e: Error) => log.debug(`an update not sent (Redis?): ${e.message}`));
    } while (again);
    running = null;
  };
  return {
    push() {
      if (running) again = true;
      else running = loop();
    },
    flush: async () => {
      await running;
    },
  };
}
