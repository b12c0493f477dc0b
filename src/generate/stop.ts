/**
 * When generation stops, and what text may be shown before it does.
 *
 * Stop tokens: a set of ids that end generation when sampled (the token itself is not part of
 * the output); by default the vocabulary's end-of-generation tokens (eos, eot, eom, <|im_end|>...,
 * llama.cpp llama_vocab_is_eog).
 *
 * Stop strings: generation ends when the streamed text contains one; the text before it is
 * output, the stop string and anything after it are not. Text that could still become a stop
 * string (a suffix that is a prefix of one, e.g. "\nUs" while "\nUser:" is a stop string) is held
 * back until the next tokens decide. Holding works per token: a token's text is released whole,
 * with its token, once none of it can belong to a stop string, so every released token carries
 * exactly its own text (cut at the stop string for the token that completes one).
 * Reference: llama.cpp tools/server/server-context.cpp (find_stopping_strings: the earliest
 * full match wins; a partial match at the end, common.h string_find_partial_stop, is held back).
 */

/** A generated token and the text it adds to the output. */
export interface TokenText {
  readonly token: number;
  readonly text: string;
}

export interface StopStep {
  /** Tokens whose text is now final, in order (possibly none while text is held back). */
  readonly release: TokenText[];
  /** The stop string that ended the text, if one did (nothing after `release` follows). */
  readonly stop?: string;
}

export class StopStrings {
  readonly stops: readonly string[];
  /** Tokens not released yet, and their text concatenated. */
  private queue: TokenText[] = [];
  private held = '';

  /** Empty strings are ignored (they would stop before the first token). */
  constructor(stops: readonly string[] = []) {
    this.stops = stops.filter((s) => s.length > 0);
  }

  /** Adds the next token's text. */
  push(token: number, text: string): StopStep {
    this.queue.push({ token, text });
    this.held += text;
    if (this.stops.length === 0) return { release: this.take(this.held.length) };

    let at = -1;
    let stop: string | undefined;
    for (const s of this.stops) {
      const i = this.held.indexOf(s);
      if (i >= 0 && (at < 0 || i < at)) {
        at = i;
        stop = s;
      }
    }
    if (stop !== undefined) {
      const release: TokenText[] = [];
      let start = 0;
      for (const t of this.queue) {
        if (start >= at) break;
        release.push(start + t.text.length <= at ? t : { token: t.token, text: t.text.slice(0, at - start) });
        start += t.text.length;
      }
      this.queue = [];
      this.held = '';
      return { release, stop };
    }
    return { release: this.take(this.held.length - this.partialLength()) };
  }

  /** The end of generation: everything held back is released. */
  finish(): TokenText[] {
    return this.take(this.held.length);
  }

  /** Releases the queued tokens whose text ends at or before `cut` in the held text. */
  private take(cut: number): TokenText[] {
    const release: TokenText[] = [];
    let end = 0;
    let n = 0;
    for (const t of this.queue) {
      if (end + t.text.length > cut) break;
      end += t.text.length;
      release.push(t);
      n++;
    }
    this.queue = this.queue.slice(n);
    this.held = this.held.slice(end);
    return release;
  }

  /** Length of the longest end of the held text that begins some stop string. */
  private partialLength(): number {
    let best = 0;
    for (const s of this.stops) {
      for (let n = Math.min(s.length - 1, this.held.length); n > best; n--) {
        if (this.held.endsWith(s.slice(0, n))) {
          best = n;
          break;
        }
      }
    }
    return best;
  }
}

/** The ids that end generation: `given`, else the vocabulary's end-of-generation tokens. */
export function stopTokenSet(given: readonly number[] | undefined, endOfGeneration: readonly number[]): ReadonlySet<number> {
  return new Set(given ?? endOfGeneration);
}
