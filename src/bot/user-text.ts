/**
 * Text that came from outside the bot (a user's word quoted back, a model's answer) on its way into a message.
 *
 * A user's word is quoted as typed, so they recognise it: the core marks the quote with two private-use characters
 * and each platform's adapter escapes what is inside for its own markup (Discord's markdown, Slack's mrkdwn) as it
 * renders the message; nothing is mangled into `?` but characters nobody can see or a terminal would obey. A model's
 * answer keeps its text and line breaks and loses every other control character, on every platform.
 */

const OPEN = '\uE000';
const CLOSE = '\uE001';
/**
 * Control characters (C0 but tab and newline, DEL, C1: a terminal obeys ESC, CR, BS), the bidi overrides and isolates
 * that reorder what is shown, and our quote marks. Joiners and direction marks stay: scripts and emoji need them.
 */
const UNSAFE_OUTPUT = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069\uE000\uE001]/g;
/** In a quoted word, newlines and tabs too: one word stays on one line. */
const UNSAFE_WORD = /[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff\uE000\uE001]/g;

/**
 * A user's word quoted back: at most `n` characters (cut between characters, never inside an emoji), control and
 * invisible characters shown as `?`, everything else as typed. Adapters render the quote with renderQuotes().
 */
export function quoteUser(s: string, n = 40): string {
  const chars = [...s.replace(UNSAFE_WORD, '?')];
  const clipped = chars.length > n ? `${chars.slice(0, n - 1).join('')}…` : chars.join('');
  return `${OPEN}${clipped}${CLOSE}`;
}

/**
 * The message as a platform shows it: every quote's inside through that platform's `quoted` escape, the rest of the
 * text through its `markup` rendering, the marks removed.
 */
export function renderQuotes(
  text: string,
  quoted: (inside: string) => string,
  markup: (text: string) => string = (t) => t,
): string {
  return text
    .split(/\uE000([^\uE000\uE001]*)\uE001/)
    .map((part, i) => (i % 2 === 1 ? quoted(part) : markup(part.replace(/[\uE000\uE001]/g, ''))))
    .join('');
}

/** A model's (or any outside program's) text made safe to show: line breaks and tabs kept, other controls removed. */
export function safeOutput(text: string): string {
  return text.replace(/\r\n?/g, '\n').replace(UNSAFE_OUTPUT, '');
}
