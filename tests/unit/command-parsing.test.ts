/** The real /train, /models and /queue definitions, parsed the way the console (and Slack's text) gives them. */
import { describe, expect, it } from 'vitest';
import { parseText, tokenize } from '../../src/command-kit.ts';
import { CommandRegistry, checkShape } from '../../src/command-registry.ts';
import { COMMANDS_DIR } from '../../src/bot.ts';
import train from '../../commands/train.ts';
import models from '../../commands/models.ts';
import ask from '../../commands/ask.ts';

const parse = (text: string) => {
  const { handler, args } = parseText(train, text);
  return { name: handler.name, args };
};

describe('/train options', () => {
  it.each(['quick_test', 'standard', 'full', 'max_quality', 'conservative'])('takes the seed profile %s', (p) => {
    expect(parse(p)).toEqual({ name: p, args: {} });
  });

  it('takes the seed’s overrides as r=32 scheduler=cosine and as --r 32 --scheduler cosine', () => {
    expect(parse('standard r=32 scheduler=cosine')).toEqual({ name: 'standard', args: { r: 32, scheduler: 'cosine' } });
    expect(parse('standard --r 32 --scheduler cosine')).toEqual({ name: 'standard', args: { r: 32, scheduler: 'cosine' } });
    expect(parse('full 64 constant')).toEqual({ name: 'full', args: { r: 64, scheduler: 'constant' } });
  });

  it.each([
    ['huge', /unknown profile 'huge'; choose one of quick_test, standard, full, max_quality, conservative \(or status, cancel\)/],
    ['', /needs a profile/],
    ['standard r=0', /r must be a whole number from 1 to 256/],
    ['standard r=257', /r must be a whole number from 1 to 256/],
    ['standard r=3.5', /r must be a whole number/],
    ['standard r=-4', /r must be a whole number/],
    ['standard r=abc', /r must be a whole number/],
    ['standard scheduler=zigzag', /unknown scheduler 'zigzag'; choose one of linear, cosine, constant, constant_with_warmup/],
    ['standard lr=0.1', /unknown option 'lr'; \/train standard \[r\] \[scheduler\] \[host=…\] \[gpu=…\] takes r, scheduler, host, gpu/],
    ['standard r=32 scheduler=cosine please', /unexpected 'please'/],
    ['standard scheduler=cosine and more', /unexpected 'and'/],
    ['standard abc', /unknown scheduler 'abc'/],
    ['standard r=', /r needs a value/],
    ['cancel', /job is required/],
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

  it('quotes a user’s bad word back without markdown or mentions', () => {
    expect(() => parse('`@everyone`')).toThrow("unknown profile '??everyone?'");
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
    expect(parseText(ask, 'latest What is the capital of France?').args).toEqual({ model: 'latest', prompt: 'What is the capital of France?' });
    expect(parseText(ask, 'base high Why is the sky blue?').args).toEqual({ model: 'base', effort: 'high', prompt: 'Why is the sky blue?' });
    expect(parseText(ask, 'latest effort=medium hi').args).toEqual({ model: 'latest', effort: 'medium', prompt: 'hi' });
  });

  it('refuses an ask without a prompt', () => {
    expect(() => parseText(ask, 'latest')).toThrow('prompt is required');
  });
});

describe('command modules', () => {
  it('loads one module per file from commands/', async () => {
    const registry = await CommandRegistry.load(COMMANDS_DIR);
    expect([...registry.commands.keys()].sort()).toEqual(['ask', 'chat', 'help', 'models', 'queue', 'runners', 'train']);
  });

  it('names the file whose module has the wrong shape', () => {
    expect(() => checkShape('commands/bad.ts', { name: 'Bad Name', description: '' })).toThrow(
      'commands/bad.ts: name must be 1-32 lowercase letters, digits, - or _; description must be 1-100 characters; needs run() or subcommands',
    );
  });
});
