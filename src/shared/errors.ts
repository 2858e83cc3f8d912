/** Small named errors that steer control flow. A UserError's message is one short line a user can act on. */
export class UserError extends Error {
  override name = 'UserError';
}

/** Bad input to a command: nothing was queued or changed. */
export class InvalidInput extends UserError {
  override name = 'InvalidInput';
}

export class JobNotFound extends UserError {
  override name = 'JobNotFound';
  constructor(readonly jobId: string) {
    super(`no training job '${jobId}'; /queue lists the jobs`);
  }
}

/** The queue (Redis) cannot be reached: say so instead of hanging. */
export class QueueUnavailable extends UserError {
  override name = 'QueueUnavailable';
  constructor() {
    super('the job queue is unavailable right now; try again in a minute');
  }
}

/** How long a command waits on Redis before it answers "queue unavailable" (ms). */
export const QUEUE_DEADLINE_MS = 2_000;

/** A Redis call with a deadline: a command answers "queue unavailable" instead of hanging. */
export async function orUnavailable<T>(call: Promise<T>, ms = QUEUE_DEADLINE_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new QueueUnavailable()), ms);
  });
  try {
    return await Promise.race([call, deadline]);
  } finally {
    clearTimeout(timer);
  }
}
