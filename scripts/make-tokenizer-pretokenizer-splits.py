#!/usr/bin/env python3
"""Expected pre-tokenizer splits, computed with Python's `regex` module (an independent regex
engine with Unicode properties), for test/unit/tokenizer-pretokenizers.test.ts.

For every distinct regex sequence in test/fixtures/tokenizer/llama-cpp-pre-tokenizers.json that
Switchyard supports, each test string is split the way llama.cpp's unicode_regex_split does:
the regexes apply in order, each one cutting every piece left by the previous ones into its
matches and the text between them (all kept, empty pieces dropped).

Semantics notes: `regex`'s \\s is the Unicode White_Space property, as in llama.cpp (whose
non-ASCII whitespace is folded to \\v before std::regex runs). Python's `$` also matches before a
final newline; the only llama.cpp pattern with `$` (deepseek-llm "\\s+$") runs after "[\\r\\n]"
has isolated every newline, so this cannot differ here.

Usage: python3 scripts/make-tokenizer-pretokenizer-splits.py \\
           > test/fixtures/tokenizer/pre-tokenizer-splits.json
Needs: Python 3, the `regex` package (tested with 2026.5.9).
"""
import json
import sys
from pathlib import Path

import regex

ROOT = Path(__file__).resolve().parent.parent
TABLE = ROOT / 'test' / 'fixtures' / 'tokenizer' / 'llama-cpp-pre-tokenizers.json'
# Pre-types llama.cpp runs with custom code or without byte-level encoding: not supported.
UNSUPPORTED = {'KIMI_K2', 'AFMOE', 'TINY_AYA', 'SUPERBPE', 'GEMMA4', 'SARVAM_MOE', 'WHITESPACE'}

STRINGS = [
    "Hello world", " Hello World!", "Hello, y'all! How are you 😁 ?",
    "I'm, you're, he's, we'll, they've, she'd, it'll, I'M, YOU'RE, WE'LL, They'Ve", "'s 't 're ' tail'",
    "don't  stop", "a  b   c    d", "trailing   ", "   leading", "x \t y", " \t\n ", "\n", "\n\n\n", "\r\n\r\n",
    "line1\nline2\r\nline3\n", "    return x**2  # comment\n", "def f(x):\n\tif x:\n\t\treturn 1\n",
    "1 12 123 1234 12345 123456 1234567", "3.14159 1,000,000 $100 50% #1", "v1.2.3-rc4", "0x1F", "x2 2x",
    "...!!!???", "<=> == != ++ -- ~ ^ | `code`", "(parens) [brackets] {braces} \"quotes\"",
    "HelloWorld helloWorld HELLOworld McDonald's iPhone", "ÉCOLE école Ünïcödé", "naïve café résumé",
    "нещо на Български", "Привет, мир!", "Γειά σου Κόσμε", "שלום עולם", "مرحبا بالعالم", "नमस्ते दुनिया",
    "我想在apple工作1314151天～", "日本語のテキスト、カタカナ。", "한국어 텍스트", "ＡＢＣ１２３！",
    "🚀 (normal) 😶\u200d🌫️ ✅ 🦙🦙", "a\u00a0b\u00a0\u00a0c", "nel\u0085line", "zero\u200bwidth", "\ufeffbom",
    "ideographic\u3000space", "tab\there", "mixed 123abc abc123 ABC_def", "email@example.com https://x.org/a?b=c",
    "Cửa Việt", "½ ¾ ² ³ ①", "\u2028sep\u2029", "",
]


def split(text, patterns):
    pieces = [text] if text else []
    for pattern in patterns:
        compiled = regex.compile(pattern)
        out = []
        for piece in pieces:
            start = 0
            for m in compiled.finditer(piece):
                if m.start() > start:
                    out.append(piece[start:m.start()])
                if m.end() > m.start():
                    out.append(m.group(0))
                start = m.end()
            if start < len(piece):
                out.append(piece[start:])
        pieces = out
    return pieces


def main():
    table = json.loads(TABLE.read_text(encoding='utf-8'))
    golden = ROOT.parent / 'shared' / 'golden' / 'tokenizers' / 'ggml-vocab-gpt-2.gguf.inp'
    strings = list(STRINGS)
    if golden.is_file():  # the llama.cpp test-vector inputs, for good measure
        strings += golden.read_text(encoding='utf-8').split('\n__ggml_vocab_test__\n')[:-1]
    groups = {}
    for pre_type, entry in sorted(table['regexes'].items()):
        if pre_type in UNSUPPORTED:
            continue
        key = json.dumps(entry['regexes'], ensure_ascii=False)
        groups.setdefault(key, []).append(pre_type)
    cases = []
    for key, types in groups.items():
        patterns = json.loads(key)
        cases.append({'types': types, 'splits': [split(s, patterns) for s in strings]})
    json.dump({
        'generator': 'scripts/make-tokenizer-pretokenizer-splits.py',
        'engine': f'Python {sys.version.split()[0]}, regex {regex.__version__}',
        'strings': strings,
        'cases': cases,
    }, sys.stdout, ensure_ascii=False, indent=None, separators=(',', ':'))
    sys.stdout.write('\n')


if __name__ == '__main__':
    main()
