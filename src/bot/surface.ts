/** The platform port: what the core needs of a chat platform to talk in a channel. Adapters (src/platforms/) implement it. */

/** A message the bot posted, as the platform adapter encodes it (opaque to the core). */
export interface MessageRef {
  channelId: string;
  id: string;
}

/** What the core needs from a chat platform to talk in a channel. */
export interface ChatSurface {
  readonly platform: string;
  /** The time between two edits of one message (ms) unless a setting says otherwise. */
  readonly editIntervalMs: number;
  /** The least time between two edits of one message that the platform allows (ms): no setting goes below it. */
  readonly minEditIntervalMs: number;
  /**
   * Whether an answer grows in its message as it streams (the default). A console on a pipe says no: every edit there
   * is printed anew, so it shows the answer once, complete.
   */
  readonly showsPartialAnswers?: boolean;
  /** A new message; `ping` names the one user it may notify (mentions are otherwise inert). */
  post(channelId: string, text: string, options?: { ping?: string }): Promise<MessageRef>;
  edit(ref: MessageRef, text: string): Promise<void>;
  /** How to mention a user in a message (`<@U1>` on Discord and Slack); a new message with it notifies them. */
  mention?(userId: string): string;
  /**
   * The last word on a job: show `text` in the message and attach a file (the loss curve). Without this capability
   * the core edits the message and leaves the file out.
   */
  finish?(ref: MessageRef, text: string, file: Attachment): Promise<void>;
}

/** A platform the bot serves in the background (Discord, Slack): started once its settings are read, stopped on exit. */
export interface ChatPlatform extends ChatSurface {
  /** Connects and registers what the platform needs (commands, event handlers); resolves once it listens. */
  start(): Promise<void>;
  /** Stops listening; what is queued stays in Redis for the next start. */
  stop(): Promise<void>;
}

export interface Attachment {
  name: string;
  data: Buffer;
  /** Alt text / title. */
  title: string;
}
