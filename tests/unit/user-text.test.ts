/** What reaches a message from outside: a user's word quoted as typed on every platform, a model's text made safe. */
import { describe, expect, it } from 'vitest';
import { toMrkdwn } from '../../src/platforms/slack/index.ts';
import { quote } from '../../src/bot/command-kit.ts';
import { quoteUser, renderQuotes, safeOutput } from '../../src/bot/user-text.ts';
import { escapeMarkdown } from 'discord.js';

const line = (word: string) => `unknown profile ${quote(word)}; choose one of quick_test, standard`;

describe("a user's word quoted back", () => {
  it('reads as typed where the platform has no markup (the console)', () => {
    expect(renderQuotes(line('quick_test;'), (q) => q)).toBe(
      "unknown profile 'quick_test;'; choose one of quick_test, standard",
    );
    expect(renderQuotes(line('<@everyone> *x* ~y~ |z| `w`'), (q) => q)).toContain("'<@everyone> *x* ~y~ |z| `w`'");
  });

  it('has its markdown escaped on Discord, so it shows as typed and not as formatting', () => {
    expect(renderQuotes(line('**bold** _it_'), escapeMarkdown)).toBe(
      "unknown profile '\\*\\*bold\\*\\* \\_it\\_'; choose one of quick_test, standard",
    );
  });

  it('is shown as code on Slack when it holds mrkdwn, its <, > and & escaped, and no mention is made of it', () => {
    expect(toMrkdwn(line('quick_test;'))).toBe("unknown profile '`quick_test;`'; choose one of quick_test, standard");
    expect(toMrkdwn(line('<@U123ABC>'))).toBe("unknown profile '&lt;@U123ABC&gt;'; choose one of quick_test, standard");
    expect(toMrkdwn(`<@U123ABC> ${quote('a&b')}`)).toBe("<@U123ABC> 'a&amp;b'");
  });

  it('shows control and invisible characters as ?, and is cut between characters', () => {
    expect(renderQuotes(quoteUser('a\u001b[2Jb\u202ec\u200bd'), (q) => q)).toBe('a?[2Jb?c?d');
    expect(renderQuotes(quoteUser('🚀'.repeat(50)), (q) => q)).toBe(`${'🚀'.repeat(39)}…`);
  });

  it('cannot forge a quote: the marks in what a user typed are removed', () => {
    expect(renderQuotes(quoteUser('\uE001**x**\uE000'), escapeMarkdown)).toBe('?\\*\\*x\\*\\*?');
  });
});

describe("a model's text", () => {
  it('loses the characters a terminal obeys (ESC, CR, SOH, BS) and bidi overrides, and keeps lines, tabs and emoji', () => {
    expect(safeOutput('ok\u001b[31mred\u001b[0m\r\nnext\rover\u0001\u0008\u202eevil')).toBe(
      'ok[31mred[0m\nnext\nover' + 'evil',
    );
    expect(safeOutput('a\tb\nc 👨‍👩‍👧 שלום\u200f')).toBe('a\tb\nc 👨‍👩‍👧 שלום\u200f');
  });
});
