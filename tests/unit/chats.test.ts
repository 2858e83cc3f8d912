import { describe, expect, it } from 'vitest';
import { fitHistory, type Turn } from '../../src/bot/conversations.ts';

const turn = (role: 'user' | 'assistant', n: number, size = 10): Turn => ({
  role,
  content: `${role}${n}`.padEnd(size, '.'),
});

describe('a conversation’s history', () => {
  it('keeps the newest turns that fit, beginning with a question', () => {
    const turns = [
      turn('user', 1),
      turn('assistant', 1),
      turn('user', 2),
      turn('assistant', 2),
      turn('user', 3),
      turn('assistant', 3),
    ];
    expect(fitHistory(turns, 60)).toEqual(turns);
    expect(fitHistory(turns, 45).map((t) => t.content.replace(/\.+$/, ''))).toEqual([
      'user2',
      'assistant2',
      'user3',
      'assistant3',
    ]);
    expect(fitHistory(turns, 35).map((t) => t.content.replace(/\.+$/, ''))).toEqual(['user3', 'assistant3']);
  });

  it('keeps nothing rather than half an exchange that does not fit', () => {
    expect(fitHistory([turn('user', 1, 50), turn('assistant', 1, 50)], 60)).toEqual([]);
  });
});
