/** The real /train, /models and /queue definitions, parsed the way the console (and Slack's text) gives them. */
import { describe, expect, it } from 'vitest';
import {
  findHandler,
  parseText as parseMarked,
  tokenize,
  validateArgs as validateMarked,
} from '../../src/bot/command-kit.ts';
import { renderQuotes } from '../../src/bot/user-text.ts';

const parseText: typeof parseMarked = (...a) => shown(() => parseMarked(...a));
const validateArgs: typeof validateMarked = (...a) => shown(() => validateMarked(...a));
import { CommandRegistry, checkShape } from '../../src/bot/command-registry.ts';
import { COMMANDS_DIR } from '../../src/bot/bot.ts';
import train from '../../src/bot/commands/train.ts';
import models from '../../src/bot/commands/models.ts';
import ask from '../../src/bot/commands/ask.ts';

/** The error as the console shows it: a quoted word as typed (the marks that let a platform escape it removed). */
function shown<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    const error = e as Error;
    throw Object.assign(new (error.constructor as new (m: string) => Error)(renderQuotes(error.message, (q) => q)), {
      name: error.name,
    });
  }
}

const parse = (text: string) => {
  const { handler, args } = shown(() => parseText(train, text));
  return { name: handler.name, args };
};

describe('/train options', () => {
  it.each(['quick_test', 'standard', 'full', 'max_quality', 'conservative'])('takes the seed profile %s', (p) => {
    expect(parse(p)).toEqual({ name: p, args: {} });
  });

  it('takes the seed’s overrides as r=32 scheduler=cosine and as --r 32 --scheduler cosine', () => {
    expect(parse('standard r=32 scheduler=cosine')).toEqual({ name: 'standard', args: { r: 32, scheduler: 'cosine' } });
    expect(parse('standard --r 32 --scheduler cosine')).toEqual({
      name: 'standard',
      args: { r: 32, scheduler: 'cosine' },
    });
    expect(parse('full 64 constant')).toEqual({ name: 'full', args: { r: 64, scheduler: 'constant' } });
  });

  it.each([
    [
      'huge',
      /unknown profile 'huge'; choose one of quick_test, standard, full, max_quality, conservative \(or status, cancel\)/,
    ],
    ['', /needs a profile/],
    ['standard r=0', /r must be a whole number from 1 to 256/],
    ['standard r=257', /r must be a whole number from 1 to 256/],
    ['standard r=3.5', /r must be a whole number/],
    ['standard r=-4', /r must be a whole number/],
    ['standard r=abc', /r must be a whole number/],
    [
      'standard scheduler=zigzag',
      /unknown scheduler 'zigzag'; choose one of linear, cosine, constant, constant_with_warmup/,
    ],
    [
      'standard lr=0.1',
      /unknown option 'lr'; \/train standard \[r\] \[scheduler\] \[host=…\] \[gpu=…\] takes r, scheduler, host, gpu/,
    ],
    ['standard r=32 scheduler=cosine please', /unexpected 'please'/],
    ['standard scheduler=cosine and more', /unexpected 'and'/],
    ['standard abc', /unknown scheduler 'abc'/],
    ['standard r=', /r needs a value/],
    ['cancel', /job is required/],
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell expansion a user might type, not a template
    ['standard scheduler=$(rm${IFS}-rf)', /unknown scheduler '\$\(rm\$\{IFS\}-rf\)'/],
  ])('refuses "/train %s" with one line that says what is allowed', (text, message) => {
    let error: Error | undefined;
    try {
      parse(text);
    } catch (e) {
      error = e as Error;
    }
    expect(error?.name).toBe('InvalidInput');
    expect(error?.message).toMatch(message);
    expect(error?.message).not.toContain('\n');
  });

  it('quotes a user’s bad word back as typed, marked for the platform to escape', () => {
    expect(() => parseMarked(train, 'quick_test;')).toThrow("unknown profile '\uE000quick_test;\uE001'");
    expect(() => parse('`@everyone`')).toThrow("unknown profile '`@everyone`'");
  });

  it('refuses an option given twice instead of taking the last', () => {
    expect(() => parse('standard r=8 r=16')).toThrow('r is given twice; give each option once');
    expect(() => parse('standard --r 8 r=16')).toThrow('r is given twice');
  });

  it('checks the line as received: a control character after the last word is refused, not trimmed', () => {
    expect(() => parse('standard scheduler=linear\n')).toThrow('scheduler contains control characters');
    expect(() => parse('standard 8\t')).toThrow('r contains control characters');
    expect(() => parse('cancel\n')).toThrow('the command contains control characters');
    expect(() => parseText(ask, 'latest hello\u0007')).toThrow('prompt contains control characters');
  });

  it('says "an action" and "a profile"', () => {
    expect(() => parseText(models, '')).toThrow(/^\/models needs an action; choose one of list/);
    expect(() => parse('')).toThrow(/^\/train needs a profile; /);
  });

  it('keeps quoted words together', () => {
    expect(tokenize(`a "b c" 'd e' f`)).toEqual(['a', 'b c', 'd e', 'f']);
  });

  it('/models list takes no options', () => {
    expect(() => parseText(models, 'list extra')).toThrow("unexpected 'extra'");
  });
});

describe('/ask options', () => {
  it('reads the model, then the prompt as free text; an effort only when it is one', () => {
    expect(parseText(ask, 'latest What is the capital of France?').args).toEqual({
      model: 'latest',
      prompt: 'What is the capital of France?',
    });
    expect(parseText(ask, 'base high Why is the sky blue?').args).toEqual({
      model: 'base',
      effort: 'high',
      prompt: 'Why is the sky blue?',
    });
    expect(parseText(ask, 'latest effort=medium hi').args).toEqual({ model: 'latest', effort: 'medium', prompt: 'hi' });
  });

  it('refuses an ask without a prompt', () => {
    expect(() => parseText(ask, 'latest')).toThrow('prompt is required');
  });
});

describe('options a platform names (Discord)', () => {
  const standard = train.subcommands!.find((s) => s.name === 'standard')!;

  it('refuses an empty value instead of taking it for "not given"', () => {
    expect(() => validateArgs(standard, { r: '' })).toThrow('r needs a value');
    expect(() => validateArgs(standard, { scheduler: '  ' })).toThrow('scheduler needs a value');
  });

  it('checks a value as received: a trailing newline is refused', () => {
    expect(() => validateArgs(standard, { scheduler: 'linear\n' })).toThrow('scheduler contains control characters');
    expect(validateArgs(standard, { scheduler: 'linear', r: 8 })).toEqual({ scheduler: 'linear', r: 8 });
  });

  it('answers an unknown or empty subcommand as typed text is answered: with the choices', () => {
    expect(() => findHandler(train, 'huge')).toThrow(
      /^unknown profile '\uE000huge\uE001'; choose one of quick_test, standard, full, max_quality, conservative \(or status, cancel\)$/,
    );
    expect(() => findHandler(train, '')).toThrow(/^\/train needs a profile; choose one of quick_test/);
  });
});

describe('command modules', () => {
  it('loads one module per file from commands/', async () => {
    const registry = await CommandRegistry.load(COMMANDS_DIR);
    expect([...registry.commands.keys()].sort()).toEqual([
      'ask',
      'chat',
      'help',
      'models',
      'queue',
      'runners',
      'train',
    ]);
  });

  it('names the file whose module has the wrong shape', () => {
    expect(() => checkShape('commands/bad.ts', { name: 'Bad Name', description: '' })).toThrow(
      'commands/bad.ts: name must be 1-32 lowercase letters, digits, - or _; description must be 1-100 characters; needs run() or subcommands',
    );
  });
});
