/**
 * jinja2 behaviours that @huggingface/jinja 0.5.11 lacks, patched in so that chat templates
 * render as transformers renders them with Python jinja2 (see chat-template.ts). This depends
 * on the library's syntax-tree node names and value classes; test/unit/chat-template.test.ts
 * compares 260 renders with Python's and catches a break on upgrade.
 * Reference: jinja2 3.1 (filters, Markup, str()/repr() of values), Python's str.format and strftime.
 */
import { Environment } from '@huggingface/jinja';

// ---- jinja2 behaviours that @huggingface/jinja 0.5.11 lacks ----------------------------------
// The parsed template is rewritten once so that these constructs call the functions below:
//   {{ x }}, a ~ b            Python str(): None, True, repr of lists/dicts ({'a': 1}), '' if undefined
//   a + b                     Python's +: str + dict is a TypeError (the engine printed "[object Map]")
//   x | string, x | trim      Python str() too (trim of undefined is '')
//   x | safe                  Markup: a plain string added to it with + is HTML-escaped
//   x | min, x | max          missing filters (case_sensitive=, attribute=)
//   'fmt'.format(...)         missing str.format ({}, {0}, {name}, {{ }}; no format specs)
//   x | selectattr(...) etc.  a None/undefined operand yields nothing instead of failing
//   for a, b in [(1, 2)]      unpacking tuples (the engine unpacks lists only)

/** A runtime value of @huggingface/jinja (its classes are not exported). */
interface JinjaValue {
  type: string;
  value: unknown;
  /** Set on strings made by `| safe` (jinja2's Markup). */
  markup?: boolean;
}
type JinjaNode = Record<string, unknown> & { type: string };

export const COMPAT_PREFIX = '__switchyard_';
const STATEMENTS = new Set([
  'Set', 'If', 'For', 'Macro', 'CallStatement', 'FilterStatement', 'Break', 'Continue', 'Comment',
]);
const COMPAT_FILTERS = new Set(['string', 'trim', 'safe', 'min', 'max']);
const GUARDED_FILTERS = new Set(['select', 'reject', 'selectattr', 'rejectattr', 'map']);

const callNode = (name: string, args: unknown[]): JinjaNode => ({
  type: 'CallExpression',
  callee: { type: 'Identifier', value: COMPAT_PREFIX + name },
  args,
});

export function rewriteForPython<T>(node: T): T {
  if (Array.isArray(node)) return node.map(rewriteForPython) as T;
  if (node instanceof Map) return new Map([...node].map(([k, v]) => [rewriteForPython(k), rewriteForPython(v)])) as T;
  if (node === null || typeof node !== 'object' || typeof (node as JinjaNode).type !== 'string') return node;
  const n = node as JinjaNode;
  for (const key of Object.keys(n)) n[key] = rewriteForPython(n[key]);
  for (const key of ['body', 'alternate', 'defaultBlock']) {
    // In a statement list an expression is output ({{ x }}): print it the Python way.
    if (Array.isArray(n[key])) {
      n[key] = (n[key] as JinjaNode[]).map((s) => (STATEMENTS.has(s.type) ? s : callNode('output', [s])));
    }
  }
  if (n.type === 'BinaryExpression') {
    const op = (n.operator as { value: string }).value;
    if (op === '+' || op === '~') return callNode(op === '+' ? 'add' : 'concat', [n.left, n.right]) as T;
  } else if (n.type === 'FilterExpression') {
    const filter = n.filter as JinjaNode;
    const isCall = filter.type === 'CallExpression';
    const name = (isCall ? (filter.callee as JinjaNode).value : filter.value) as string;
    const args = isCall ? (filter.args as unknown[]) : [];
    if (COMPAT_FILTERS.has(name)) return callNode(name, [n.operand, ...args]) as T;
    if (GUARDED_FILTERS.has(name)) n.operand = callNode('or_empty', [n.operand]);
  } else if (n.type === 'CallExpression') {
    const callee = n.callee as JinjaNode;
    if (callee.type === 'MemberExpression' && !callee.computed && (callee.property as JinjaNode).value === 'format') {
      return callNode('format', [callee.object, ...(n.args as unknown[])]) as T;
    }
  } else if (n.type === 'For' && (n.loopvar as JinjaNode).type === 'TupleLiteral') {
    n.iterable = callNode('unpackable', [n.iterable]);
  }
  return node;
}

// Environment.set converts a JS value into a runtime value; a scratch environment lends it.
const scratch = new Environment();
export function toJinja(value: unknown): JinjaValue {
  scratch.variables.delete('value');
  return scratch.set('value', value) as JinjaValue;
}
// A new value of the same runtime class as `like` (a FloatValue for 2.5 + 0.5, which prints 3.0).
const sameKind = (like: JinjaValue, value: unknown): JinjaValue =>
  Object.assign(Object.create(Object.getPrototypeOf(like)), { type: like.type, value });
const isNone = (v: JinjaValue | undefined) => !v || v.type === 'UndefinedValue' || v.type === 'NullValue';
const isNumber = (v: JinjaValue) => v.type === 'IntegerValue' || v.type === 'FloatValue' || v.type === 'BooleanValue';

function splitKeywords(args: JinjaValue[]): [JinjaValue[], Map<string, JinjaValue>] {
  const last = args[args.length - 1];
  if (last?.type === 'KeywordArgumentsValue') return [args.slice(0, -1), last.value as Map<string, JinjaValue>];
  return [args, new Map()];
}

export const PYTHON_COMPAT: Record<string, (args: JinjaValue[]) => JinjaValue> = {
  output: ([value]) => (value.type === 'StringValue' ? value : toJinja(pythonStr(value))),
  concat: ([a, b]) => toJinja(pythonStr(a) + pythonStr(b)),
  add: ([a, b]) => {
    if (a.type === 'StringValue' && b.type === 'StringValue') {
      if (!a.markup && !b.markup) return toJinja((a.value as string) + (b.value as string));
      const html = (v: JinjaValue) => (v.markup ? (v.value as string) : escapeHtml(v.value as string));
      return markup(html(a) + html(b));
    }
    if (isNumber(a) && isNumber(b)) {
      const sum = Number(a.value) + Number(b.value);
      const float = [a, b].find((v) => v.type === 'FloatValue');
      return float ? sameKind(float, sum) : toJinja(sum);
    }
    if ((a.type === 'ArrayValue' || a.type === 'TupleValue') && a.type === b.type) {
      return sameKind(a, [...(a.value as JinjaValue[]), ...(b.value as JinjaValue[])]);
    }
    if (a.type === 'UndefinedValue' || b.type === 'UndefinedValue') throw new Error('an undefined value in +');
    throw new Error(`unsupported operand types for +: ${pythonType(a)} and ${pythonType(b)}`);
  },
  string: ([value]) => toJinja(pythonStr(value)),
  safe: ([value]) => markup(pythonStr(value)),
  trim: ([value, chars]) => {
    const text = pythonStr(value);
    const strip = isNone(chars) ? PY_WHITESPACE : new Set(String(chars.value));
    const codes = [...text];
    let [start, end] = [0, codes.length];
    while (start < end && strip.has(codes[start])) start++;
    while (end > start && strip.has(codes[end - 1])) end--;
    return toJinja(codes.slice(start, end).join(''));
  },
  min: (args) => minOrMax(args, -1),
  max: (args) => minOrMax(args, 1),
  or_empty: ([value]) => (isNone(value) ? toJinja([]) : value),
  unpackable: ([value]) => {
    if (value.type !== 'ArrayValue') return value;
    const items = value.value as JinjaValue[];
    return sameKind(value, items.map((item) => (item.type === 'TupleValue' ? sameKind(value, item.value) : item)));
  },
  format: (allArgs) => {
    const [[self, ...args], kwargs] = splitKeywords(allArgs);
    if (self?.type !== 'StringValue') throw new Error(`format() called on ${self?.type}, not on a string`);
    let next = 0;
    let numbering: string | undefined;
    const text = (self.value as string).replace(/\{\{|\}\}|\{([^{}]*)\}/g, (whole, field: string | undefined) => {
      if (field === undefined) return whole[0]; // {{ or }}
      if (/[:![.]/.test(field)) throw new Error(`format(): '${whole}' (spec, conversion, attribute) is not supported`);
      const kind = field === '' ? 'automatic' : /^\d+$/.test(field) ? 'manual' : 'named';
      if (kind !== 'named') {
        if (numbering && numbering !== kind) throw new Error('format(): cannot mix {} and {0} fields');
        numbering = kind;
      }
      const value = kind === 'automatic' ? args[next++] : kind === 'manual' ? args[Number(field)] : kwargs.get(field);
      if (!value) throw new Error(`format(): no value for '${whole}'`);
      return pythonStr(value);
    });
    return toJinja(text);
  },
};

function minOrMax(allArgs: JinjaValue[], sign: 1 | -1): JinjaValue {
  const [[seq], kwargs] = splitKeywords(allArgs);
  if (seq?.type !== 'ArrayValue' && seq?.type !== 'TupleValue') throw new Error(`min/max of ${seq?.type}`);
  const attribute = kwargs.get('attribute');
  const caseSensitive = kwargs.get('case_sensitive')?.value === true;
  const key = (item: JinjaValue): number | string => {
    const v = attribute ? ((item.value as Map<string, JinjaValue>).get?.(String(attribute.value)) ?? item) : item;
    return typeof v.value === 'string' && !caseSensitive ? v.value.toLowerCase() : (v.value as number);
  };
  let best: JinjaValue | undefined;
  for (const item of seq.value as JinjaValue[]) {
    if (best === undefined) best = item;
    else {
      const [a, b] = [key(item), key(best)];
      if (typeof a !== typeof b) throw new Error(`cannot compare ${typeof a} with ${typeof b}`);
      if (sign > 0 ? a > b : a < b) best = item;
    }
  }
  return best ?? toJinja(undefined); // jinja2: undefined for an empty sequence
}

// Python's str.isspace() characters, for strip().
const PY_WHITESPACE = new Set(
  '\t\n\v\f\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a' +
    '\u2028\u2029\u202f\u205f\u3000',
);

function markup(text: string): JinjaValue {
  const value = toJinja(text);
  value.markup = true;
  return value;
}

// markupsafe.escape
const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', "'": '&#39;', '"': '&#34;' };
const escapeHtml = (text: string) => text.replace(/[&<>'"]/g, (c) => HTML_ESCAPES[c]);

const PYTHON_TYPES: Record<string, string> = {
  StringValue: 'str', IntegerValue: 'int', FloatValue: 'float', BooleanValue: 'bool',
  NullValue: 'NoneType', ArrayValue: 'list', TupleValue: 'tuple', ObjectValue: 'dict',
};
const pythonType = (v: JinjaValue) => PYTHON_TYPES[v.type] ?? v.type;

/** Python's str() of a template value: a string itself, '' for undefined, else repr(). */
function pythonStr(v: JinjaValue | undefined): string {
  if (!v || v.type === 'UndefinedValue') return '';
  return v.type === 'StringValue' ? (v.value as string) : pythonRepr(v);
}

function pythonRepr(v: JinjaValue): string {
  switch (v.type) {
    case 'StringValue':
      return pythonStringRepr(v.value as string);
    case 'BooleanValue':
      return v.value ? 'True' : 'False';
    case 'NullValue':
    case 'UndefinedValue':
      return 'None';
    case 'ArrayValue':
      return `[${(v.value as JinjaValue[]).map(pythonRepr).join(', ')}]`;
    case 'TupleValue': {
      const items = (v.value as JinjaValue[]).map(pythonRepr);
      return `(${items.join(', ')}${items.length === 1 ? ',' : ''})`;
    }
    case 'ObjectValue':
    case 'KeywordArgumentsValue':
    case 'NamespaceValue': {
      const entries = [...(v.value as Map<string, JinjaValue>)];
      const body = entries.map(([k, x]) => `${pythonStringRepr(k)}: ${pythonRepr(x)}`).join(', ');
      return v.type === 'NamespaceValue' ? `<Namespace {${body}}>` : `{${body}}`;
    }
    default:
      return String(v); // numbers: the engine already prints floats as Python does (1.0)
  }
}

// repr() of a str: single quotes unless it holds ' and no ", escapes for what is not printable.
function pythonStringRepr(text: string): string {
  const quote = text.includes("'") && !text.includes('"') ? '"' : "'";
  const named: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t', '\\': '\\\\', [quote]: `\\${quote}` };
  let out = quote;
  for (const ch of text) {
    if (named[ch]) out += named[ch];
    else if (ch !== ' ' && /[\p{C}\p{Z}]/u.test(ch)) {
      const code = ch.codePointAt(0)!;
      const [prefix, width] = code < 0x100 ? ['x', 2] : code < 0x10000 ? ['u', 4] : ['U', 8];
      out += `\\${prefix}${code.toString(16).padStart(width as number, '0')}`;
    } else out += ch;
  }
  return out + quote;
}

export function pythonRange(start: number, stop?: number, step = 1): number[] {
  if (stop === undefined) [start, stop] = [0, start];
  if (step === 0) throw new Error('range() arg 3 must not be zero');
  const out: number[] = [];
  for (let i = start; step > 0 ? i < stop : i > stop; i += step) out.push(i);
  return out;
}

const DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];
const MONTHS = 'January February March April May June July August September October November December'.split(' ');

/**
 * Python's datetime.strftime in the C locale (English names), local time. Directives it does
 * not know are left as written, as glibc does.
 */
export function strftime(date: Date, format: string): string {
  const pad = (n: number, width = 2) => String(n).padStart(width, '0');
  const year = date.getFullYear();
  const dayOfYear = (Date.UTC(year, date.getMonth(), date.getDate()) - Date.UTC(year, 0, 1)) / 86_400_000 + 1;
  const fields: Record<string, string> = {
    a: DAYS[date.getDay()].slice(0, 3),
    A: DAYS[date.getDay()],
    b: MONTHS[date.getMonth()].slice(0, 3),
    B: MONTHS[date.getMonth()],
    d: pad(date.getDate()),
    e: String(date.getDate()).padStart(2, ' '),
    H: pad(date.getHours()),
    I: pad(date.getHours() % 12 || 12),
    j: pad(dayOfYear, 3),
    m: pad(date.getMonth() + 1),
    M: pad(date.getMinutes()),
    p: date.getHours() < 12 ? 'AM' : 'PM',
    S: pad(date.getSeconds()),
    y: pad(year % 100),
    Y: String(year),
    '%': '%',
  };
  return format.replace(/%(.)/gs, (whole, directive: string) => fields[directive] ?? whole);
}
