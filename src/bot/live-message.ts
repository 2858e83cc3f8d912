/**
 * One chat message that keeps itself up to date. Updates are coalesced: at most one edit per interval, the newest
 * text wins, and the last update is never dropped. finish() sends the final text at once (after any edit in flight).
 */
import { logger } from '../shared/log.ts';
import type { ChatSurface, MessageRef } from './surface.ts';

const log = logger('live');

export class LiveMessage {
  private shown: string;
  private pending: string | null = null;
  private lastEditAt = 0;
  private timer: NodeJS.Timeout | null = null;
  private inFlight: Promise<void> = Promise.resolve();
  private finished = false;
  /** Edits sent so far (the first post not counted). */
  edits = 0;

  constructor(
    private readonly surface: Pick<ChatSurface, 'edit'>,
    readonly ref: MessageRef,
    initialText: string,
    private readonly intervalMs: number,
    private readonly now: () => number = Date.now,
  ) {
    this.shown = initialText;
    this.lastEditAt = now();
  }

  update(text: string): void {
    if (this.finished || text === (this.pending ?? this.shown)) return;
    this.pending = text;
    if (this.timer) return;
    const wait = Math.max(0, this.lastEditAt + this.intervalMs - this.now());
    this.timer = setTimeout(() => {
      this.timer = null;
      this.flush();
    }, wait);
  }

  /**
   * The last word: cancels any scheduled edit and shows `text`, waiting for the edit in flight first. `send` replaces
   * the plain edit for this one (to attach a file with it).
   */
  async finish(text: string, send?: (text: string) => Promise<void>): Promise<void> {
    if (this.finished) return;
    this.finished = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.pending = text;
    const wait = Math.max(0, this.lastEditAt + this.intervalMs - this.now());
    await this.inFlight;
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    this.flush(send);
    await this.inFlight;
  }

  private flush(send?: (text: string) => Promise<void>): void {
    const text = this.pending;
    this.pending = null;
    if (text === null || (text === this.shown && !send)) return;
    this.shown = text;
    this.lastEditAt = this.now();
    this.edits++;
    this.inFlight = this.inFlight
      .then(() =>
        send
          ? send(text).catch((e) => {
              log.warn(`could not attach to message ${this.ref.id}; editing its text only`, e);
              return this.surface.edit(this.ref, text);
            })
          : this.surface.edit(this.ref, text),
      )
      .catch((e) => log.warn(`could not edit message ${this.ref.id}`, e));
  }
}
