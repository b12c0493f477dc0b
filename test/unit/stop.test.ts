// Stop strings with streaming holdback (src/generate/stop.ts): text that could still become a
// stop string is held back with its tokens; the stop string and what follows are never released.
import { describe, expect, it } from 'vitest';
import { StopStrings, stopTokenSet, type TokenText } from '../../src/generate/stop.js';

/** Feeds pieces as tokens 0, 1, 2...; returns what was released after each push, and the stop. */
function run(stops: string[], pieces: string[]) {
  const s = new StopStrings(stops);
  const steps: string[][] = [];
  let stop: string | undefined;
  let released: TokenText[] = [];
  for (const [i, piece] of pieces.entries()) {
    const step = s.push(i, piece);
    steps.push(step.release.map((t) => t.text));
    released = released.concat(step.release);
    if (step.stop !== undefined) {
      stop = step.stop;
      break;
    }
  }
  if (stop === undefined) released = released.concat(s.finish());
  return { steps, stop, released, text: released.map((t) => t.text).join('') };
}

describe('stop strings', () => {
  it('without stop strings every token is released at once', () => {
    const r = run([], ['a', 'b', '']);
    expect(r.steps).toEqual([['a'], ['b'], ['']]);
    expect(r.text).toBe('ab');
  });

  it('holds back a possible stop string, then drops it when it completes', () => {
    const r = run(['\nUser:'], ['Hello', '\n', 'Us', 'er', ':', 'more']);
    expect(r.steps).toEqual([['Hello'], [], [], [], []]);
    expect(r.stop).toBe('\nUser:');
    expect(r.text).toBe('Hello');
    expect(r.released.map((t) => t.token)).toEqual([0]);
  });

  it('releases held tokens with their own text once they cannot start a stop string', () => {
    const r = run(['\nUser:'], ['Hello', '\n', 'Us', 'ed', ' it']);
    expect(r.steps).toEqual([['Hello'], [], [], ['\n', 'Us', 'ed'], [' it']]);
    expect(r.stop).toBeUndefined();
    expect(r.text).toBe('Hello\nUsed it');
  });

  it('cuts the token that completes a stop string; text after it is not released', () => {
    const r = run(['<stop>'], ['abc<st', 'op>def']);
    expect(r.steps).toEqual([[], ['abc']]);
    expect(r.released).toEqual([{ token: 0, text: 'abc' }]);
    const inOne = run(['<stop>'], ['x', 'y<stop>z']);
    expect(inOne.released).toEqual([
      { token: 0, text: 'x' },
      { token: 1, text: 'y' },
    ]);
  });

  it('tokens entirely inside or after the stop string are not released', () => {
    const r = run(['END'], ['ok ', 'E', 'N', 'D']);
    expect(r.released).toEqual([{ token: 0, text: 'ok ' }]);
    const atStart = run(['END'], ['END']);
    expect(atStart.released).toEqual([]);
    expect(atStart.stop).toBe('END');
  });

  it('the earliest stop string wins; finish() releases what is held at the end', () => {
    const r = run(['bc', 'abcd'], ['xab', 'cd']); // "abcd" starts at 1, "bc" at 2
    expect(r.stop).toBe('abcd');
    expect(r.text).toBe('x');
    const held = run(['STOP'], ['go', ' ST']);
    expect(held.steps).toEqual([['go'], []]);
    expect(held.text).toBe('go ST'); // finish(): generation ended without completing the stop string
  });

  it('a stop string that starts inside held text: the text before it is released', () => {
    // "xa" is held ("a" may start "ab"), then "xaab" holds "ab" at 2: "xa" is released
    const r = run(['ab'], ['xa', 'ab']);
    expect(r.steps).toEqual([[], ['xa']]);
    expect(r.released).toEqual([{ token: 0, text: 'xa' }]);
    expect(r.text).toBe('xa');
  });

  it('handles non-ASCII text and ignores empty stop strings', () => {
    const r = run(['', '。\n'], ['こんにちは', '。', '\n', 'x']);
    expect(r.text).toBe('こんにちは');
    expect(new StopStrings(['', 'a']).stops).toEqual(['a']);
  });
});

describe('stop tokens', () => {
  it("default to the vocabulary's end-of-generation set; given ones replace it", () => {
    expect([...stopTokenSet(undefined, [2, 32000])]).toEqual([2, 32000]);
    expect([...stopTokenSet([7], [2])]).toEqual([7]);
    expect(stopTokenSet([], [2]).size).toBe(0);
  });
});
