/**
 * A strict JSON parser for safetensors headers and index files.
 *
 * Why not JSON.parse: the spec disallows duplicate keys (JSON.parse keeps the last one silently),
 * integers must be exact (JSON.parse rounds 2^53 + 1, and turns `2.0` into an integer that the
 * reference's serde_json refuses for a dimension), and a hostile header could nest arrays deep
 * enough to matter. This parser returns objects as Maps in file order (no prototype pitfalls with
 * keys like "__proto__"), integer tokens as bigint (clamped to +-10^30 beyond 31 characters) and
 * other numbers as number, refuses lone surrogates in \u escapes (as serde_json does) and bounds
 * nesting depth.
 *
 * Reference: RFC 8259; the safetensors README ("Duplicate keys are disallowed"; the JSON subset is
 * that of serde_json).
 */

export type JsonValue = null | boolean | string | number | bigint | JsonValue[] | JsonObject;
export type JsonObject = Map<string, JsonValue>;

/** A syntax error; `position` is the UTF-16 index in the text where it was found. */
export class JsonSyntaxError extends Error {
  constructor(
    message: string,
    readonly position: number,
  ) {
    super(`${message} at character ${position}`);
    this.name = 'JsonSyntaxError';
  }
}

const HUGE_INTEGER = 10n ** 30n;
// biome-ignore lint/suspicious/noControlCharactersInRegex: JSON strings may not hold raw control characters; a run stops at them.
const PLAIN_RUN = /[^"\\\u0000-\u001f]*/y;
const NUMBER = /-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/y;
const ESCAPES: Record<string, string> = {
  '"': '"',
  '\\': '\\',
  '/': '/',
  b: '\b',
  f: '\f',
  n: '\n',
  r: '\r',
  t: '\t',
};

export function parseStrictJson(text: string, maxDepth = 64): JsonValue {
  let pos = 0;
  const n = text.length;

  const fail = (what: string): never => {
    throw new JsonSyntaxError(what, pos);
  };

  const skipWhitespace = (): void => {
    while (pos < n) {
      const c = text.charCodeAt(pos);
      if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) return;
      pos++;
    }
  };

  const hex4 = (): number => {
    if (pos + 4 > n) fail('truncated \\u escape');
    let v = 0;
    for (let k = 0; k < 4; k++) {
      const c = text.charCodeAt(pos + k);
      const d =
        c >= 0x30 && c <= 0x39 ? c - 0x30 : c >= 0x61 && c <= 0x66 ? c - 0x57 : c >= 0x41 && c <= 0x46 ? c - 0x37 : -1;
      if (d < 0) fail('bad hex digit in \\u escape');
      v = v * 16 + d;
    }
    pos += 4;
    return v;
  };

  const parseString = (): string => {
    pos++; // opening quote
    let out = '';
    for (;;) {
      // Skip the plain run (no quote, backslash or control character) in one regex step.
      PLAIN_RUN.lastIndex = pos;
      PLAIN_RUN.test(text);
      out += text.slice(pos, PLAIN_RUN.lastIndex);
      pos = PLAIN_RUN.lastIndex;
      if (pos >= n) fail('unterminated string');
      const c = text.charCodeAt(pos);
      if (c === 0x22) {
        pos++;
        return out;
      }
      if (c < 0x20) fail('control character in string');
      pos++; // backslash
      if (pos >= n) fail('unterminated escape');
      const e = text[pos];
      if (e === 'u') {
        pos++;
        const unit = hex4();
        if (unit >= 0xdc00 && unit <= 0xdfff) fail('lone low surrogate in \\u escape');
        if (unit >= 0xd800 && unit <= 0xdbff) {
          if (text[pos] !== '\\' || text[pos + 1] !== 'u') fail('lone high surrogate in \\u escape');
          pos += 2;
          const low = hex4();
          if (low < 0xdc00 || low > 0xdfff) fail('high surrogate not followed by a low one');
          out += String.fromCharCode(unit, low);
        } else {
          out += String.fromCharCode(unit);
        }
      } else {
        const ch = ESCAPES[e];
        if (ch === undefined) fail(`invalid escape \\${e}`);
        out += ch;
        pos++;
      }
    }
  };

  const parseNumber = (): number | bigint => {
    // Fast path: a short plain integer (the common case: shapes and offsets).
    const start = pos;
    let p = text.charCodeAt(pos) === 0x2d ? pos + 1 : pos;
    const digitsStart = p;
    let value = 0;
    while (p < n) {
      const c = text.charCodeAt(p);
      if (c < 0x30 || c > 0x39) break;
      value = value * 10 + (c - 0x30);
      p++;
    }
    const digits = p - digitsStart;
    const next = p < n ? text.charCodeAt(p) : 0;
    const plainInteger = next !== 0x2e && next !== 0x65 && next !== 0x45;
    if (plainInteger && digits >= 1 && digits <= 15 && (digits === 1 || text.charCodeAt(digitsStart) !== 0x30)) {
      pos = p;
      return BigInt(start === digitsStart ? value : -value);
    }
    NUMBER.lastIndex = start;
    const m = NUMBER.exec(text);
    if (m === null) return fail('invalid number');
    pos = NUMBER.lastIndex;
    if (m[1] !== undefined || m[2] !== undefined) return Number(m[0]);
    // Converting a very long digit string to BigInt can take quadratic time; any integer this
    // long is out of every range we check, so it is clamped to +-10^30.
    if (m[0].length > 31) return m[0].startsWith('-') ? -HUGE_INTEGER : HUGE_INTEGER;
    return BigInt(m[0]);
  };

  const parseLiteral = (word: string, value: JsonValue): JsonValue => {
    if (text.startsWith(word, pos)) {
      pos += word.length;
      return value;
    }
    return fail('unexpected character');
  };

  const parseValue = (depth: number): JsonValue => {
    skipWhitespace();
    if (pos >= n) fail('unexpected end of text');
    const c = text[pos];
    if (c === '{') {
      if (depth >= maxDepth) fail(`nesting deeper than ${maxDepth}`);
      pos++;
      const obj: JsonObject = new Map();
      skipWhitespace();
      if (text[pos] === '}') {
        pos++;
        return obj;
      }
      for (;;) {
        skipWhitespace();
        if (text[pos] !== '"') fail('expected a string key');
        const keyAt = pos;
        const key = parseString();
        if (obj.has(key)) {
          pos = keyAt;
          fail(`duplicate key ${JSON.stringify(key.length > 60 ? key.slice(0, 60) + '...' : key)}`);
        }
        skipWhitespace();
        if (text[pos] !== ':') fail("expected ':'");
        pos++;
        obj.set(key, parseValue(depth + 1));
        skipWhitespace();
        if (text[pos] === ',') {
          pos++;
          continue;
        }
        if (text[pos] === '}') {
          pos++;
          return obj;
        }
        fail("expected ',' or '}'");
      }
    }
    if (c === '[') {
      if (depth >= maxDepth) fail(`nesting deeper than ${maxDepth}`);
      pos++;
      const arr: JsonValue[] = [];
      skipWhitespace();
      if (text[pos] === ']') {
        pos++;
        return arr;
      }
      for (;;) {
        arr.push(parseValue(depth + 1));
        skipWhitespace();
        if (text[pos] === ',') {
          pos++;
          continue;
        }
        if (text[pos] === ']') {
          pos++;
          return arr;
        }
        fail("expected ',' or ']'");
      }
    }
    if (c === '"') return parseString();
    if (c === 't') return parseLiteral('true', true);
    if (c === 'f') return parseLiteral('false', false);
    if (c === 'n') return parseLiteral('null', null);
    return parseNumber();
  };

  const value = parseValue(0);
  skipWhitespace();
  if (pos < n) fail('unexpected text after the JSON value');
  return value;
}

/** Serializes a parsed value back to compact JSON (used to show non-string index metadata). */
export function stringifyJson(value: JsonValue): string {
  if (value instanceof Map) {
    const parts: string[] = [];
    for (const [k, v] of value) parts.push(JSON.stringify(k) + ':' + stringifyJson(v));
    return '{' + parts.join(',') + '}';
  }
  if (Array.isArray(value)) return '[' + value.map(stringifyJson).join(',') + ']';
  if (typeof value === 'bigint') return value.toString();
  return JSON.stringify(value);
}
