#!/usr/bin/env python3
"""Extract llama.cpp's BPE pre-tokenizer table from src/llama-vocab.cpp into a JSON fixture.

The fixture is the independent reference for test/unit/tokenizer-pretokenizers.test.ts: our
hand-written table (src/tokenizer/pre-tokenizers.ts) must quote the same regexes and flags.

It records, for every `tokenizer.ggml.pre` name accepted by `llama_vocab::impl::load`:
the LLAMA_VOCAB_PRE_TYPE_* it selects and the flags set in that branch (ignore_merges,
clean_spaces, add_bos, ...); and for every pre-type, the `regex_exprs` of the
`llm_tokenizer_bpe` constructor (C string literals unescaped) with the line number of its
`regex_exprs = {` statement.

Usage (llama.cpp at commit d32676d77, the commit of ../shared/golden):
  git -C /path/to/llama.cpp show d32676d77:src/llama-vocab.cpp > /tmp/llama-vocab.cpp
  python3 scripts/make-tokenizer-llama-cpp-table.py /tmp/llama-vocab.cpp d32676d77 \
      > test/fixtures/tokenizer/llama-cpp-pre-tokenizers.json
Python 3 standard library only.
"""
import json
import re
import sys
from pathlib import Path


def unescape_c_string(body: str) -> str:
    """The value of a C string literal's body (between the quotes), UTF-8 source."""
    out = []
    i = 0
    simple = {'n': '\n', 'r': '\r', 't': '\t', '\\': '\\', '"': '"', "'": "'", '0': '\0'}
    while i < len(body):
        c = body[i]
        if c == '\\':
            n = body[i + 1]
            if n in simple:
                out.append(simple[n])
                i += 2
                continue
            if n == 'x':
                m = re.match(r'[0-9a-fA-F]+', body[i + 2:])
                out.append(chr(int(m.group(0), 16)))
                i += 2 + len(m.group(0))
                continue
            raise ValueError(f'unsupported escape \\{n} in {body!r}')
        out.append(c)
        i += 1
    return ''.join(out)


STRING_RE = re.compile(r'"((?:[^"\\]|\\.)*)"')


def parse_regex_table(lines):
    """pre-type -> {regexes, line} from the llm_tokenizer_bpe constructor switch."""
    start = next(i for i, l in enumerate(lines) if 'llm_tokenizer_bpe(const llama_vocab & vocab)' in l)
    table = {}
    pending = []
    i = start
    while True:
        line = lines[i]
        m = re.match(r'\s*case (LLAMA_VOCAB_PRE_TYPE_\w+):', line)
        if m:
            pending.append(m.group(1)[len('LLAMA_VOCAB_PRE_TYPE_'):])
        elif re.match(r'\s*default:', line):
            pending.append('DEFAULT')
        elif 'regex_exprs = {' in line:
            regexes = []
            first_line = i + 1  # 1-based line of 'regex_exprs = {'
            i += 1
            while not re.match(r'\s*};', lines[i]):
                code = lines[i].split('//')[0] if lines[i].strip().startswith('//') else lines[i]
                if not code.strip().startswith('//'):
                    for lit in STRING_RE.findall(code):
                        regexes.append(unescape_c_string(lit))
                i += 1
            for t in pending:
                table[t] = {'regexes': regexes, 'line': first_line}
            pending = []
            if 'DEFAULT' in table:
                return table
        i += 1


def parse_name_table(lines):
    """tokenizer.ggml.pre name -> {type, flags} from the if/else chain in impl::load."""
    start = next(i for i, l in enumerate(lines) if 'tokenizer_pre == "default"' in l)
    names = {}
    current = []
    i = start
    while True:
        line = lines[i]
        for name in re.findall(r'tokenizer_pre == "([^"]+)"', line):
            current.append(name)
        m = re.search(r'pre_type = LLAMA_VOCAB_PRE_TYPE_(\w+);', line)
        if m:
            branch = {'type': m.group(1), 'line': i + 1}
            j = i + 1
            while not re.match(r'\s*\} else', lines[j]):
                f = re.match(r'\s*(\w+(?:\.\w+)?)\s*=\s*([^;]+);', lines[j])
                if f:
                    branch[f.group(1)] = f.group(2).strip()
                j += 1
            for name in current:
                names[name] = branch
            current = []
        if 'unknown pre-tokenizer type' in line:
            return names
        i += 1


def main():
    source = Path(sys.argv[1]).read_text(encoding='utf-8')
    commit = sys.argv[2] if len(sys.argv) > 2 else 'unknown'
    lines = source.split('\n')
    out = {
        'source': 'llama.cpp src/llama-vocab.cpp',
        'commit': commit,
        'generator': 'scripts/make-tokenizer-llama-cpp-table.py',
        'regexes': parse_regex_table(lines),
        'names': parse_name_table(lines),
    }
    json.dump(out, sys.stdout, ensure_ascii=False, indent=1, sort_keys=True)
    sys.stdout.write('\n')


if __name__ == '__main__':
    main()
