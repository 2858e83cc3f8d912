/** Every platform's limits in one table (DESIGN.md, "Chat platforms: limits to respect"). */
export const PLATFORM_LIMITS = {
  console: {
    /** A terminal redraws one line cheaply. */
    ttyEditIntervalMs: 200,
    /** On a pipe every edit is a new line: keep the log readable. */
    editIntervalMs: 1_000,
    messageChars: Infinity,
  },
  discord: {
    editIntervalMs: 1_000,
    minEditIntervalMs: 1_000,
    messageChars: 2_000,
    embedChars: 6_000,
    fileBytes: 10 * 1024 * 1024,
    ackMs: 3_000,
    interactionTokenMs: 15 * 60_000,
  },
  /** chat.update is tier 3, about 50 a minute for the whole workspace: updatesPerMinute is shared by every message. */
  slack: {
    editIntervalMs: 1_500,
    minEditIntervalMs: 1_500,
    updatesPerMinute: 45,
    messageChars: 40_000,
    blocks: 50,
    sectionChars: 3_000,
    ackMs: 3_000,
  },
} as const;
