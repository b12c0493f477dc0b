#!/usr/bin/env python3
"""Expected chat-template renders for test/unit/chat-template.test.ts.

Renders every ../shared/golden/templates/*.jinja with Python jinja2 set up the way Hugging Face
transformers' apply_chat_template sets it up (reference: transformers
src/transformers/utils/chat_template_utils.py, _compile_jinja_template and render_jinja_template):
an ImmutableSandboxedEnvironment with trim_blocks=True, lstrip_blocks=True, the loopcontrols
extension and the `{% generation %}` tag (transformers' AssistantTracker, which renders its body
unchanged when no assistant mask is asked for), the globals raise_exception and strftime_now, and a
tojson filter that calls json.dumps(ensure_ascii=False) (no HTML escaping, key order kept). The
variables are messages, tools (None when absent), documents (None), add_generation_prompt,
bos_token and eos_token.

Made with jinja2 3.1.6 (Python 3.11); the script refuses another jinja2 version unless
--any-jinja is given, because the expected files must come from one known reference.

Inputs are fixed so the output is reproducible: bos_token "<s>", eos_token "</s>", strftime_now
returns the given format applied to 2026-01-15 12:00:00 (naive local time, as datetime.now()).
The conversations (CASES below) are written to test/fixtures/templates/inputs.json, which the test
reads, so both sides render exactly the same input.

Writes test/fixtures/templates/<template>.<case>.txt (the exact UTF-8 render, no added newline) for
each render that succeeds, and expected.json: template -> case -> {"ok": true} or
{"ok": false, "error": "<Python exception type>: <message>"}.

Usage: python3 scripts/make-template-fixtures.py [--templates DIR] [--out DIR] [--any-jinja]
"""

import argparse
import copy
import datetime
import glob
import hashlib
import json
import os
import sys

import jinja2
import jinja2.ext
from jinja2 import nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

JINJA_VERSION = "3.1.6"
BOS_TOKEN = "<s>"
EOS_TOKEN = "</s>"
NOW = datetime.datetime(2026, 1, 15, 12, 0, 0)

SYSTEM = {"role": "system", "content": "You are a helpful assistant."}
USER_1 = {"role": "user", "content": "Hello! What is a mixture of experts?"}
ASSISTANT_1 = {
    "role": "assistant",
    "content": "A model whose layers route each token to a few expert networks.",
}
USER_2 = {"role": "user", "content": "Why is that fast?"}

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "The city, e.g. Zürich"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city"],
        },
    },
}

# Tool-call arguments are an object here, as transformers expects; the test also sends them as the
# JSON string an OpenAI client sends, which ChatTemplate parses back (see chat-template.ts).
# The id has 9 alphanumeric characters because Mistral templates reject any other id.
TOOL_CONVERSATION = [
    {"role": "user", "content": "What is the weather in Zürich?"},
    {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {
                "id": "call12345",
                "type": "function",
                "function": {"name": "get_weather", "arguments": {"city": "Zürich", "unit": "celsius"}},
            }
        ],
    },
    {
        "role": "tool",
        "tool_call_id": "call12345",
        "name": "get_weather",
        "content": '{"temperature": 21, "condition": "sunny"}',
    },
]

REASONING_CONVERSATION = [
    {"role": "user", "content": "What is 17 + 25?"},
    {"role": "assistant", "reasoning_content": "17 + 25: 7 + 5 = 12, carry 1, so 42.", "content": "42"},
]

CASES = {
    "system": {"messages": [SYSTEM, USER_1, ASSISTANT_1, USER_2], "tools": None, "add_generation_prompt": True},
    "no_system": {"messages": [USER_1, ASSISTANT_1, USER_2], "tools": None, "add_generation_prompt": True},
    "tools": {"messages": TOOL_CONVERSATION, "tools": [WEATHER_TOOL], "add_generation_prompt": True},
    "reasoning": {"messages": REASONING_CONVERSATION, "tools": None, "add_generation_prompt": False},
}


class GenerationTag(jinja2.ext.Extension):
    """transformers' `{% generation %}...{% endgeneration %}`; with no assistant mask asked for it
    renders its body unchanged."""

    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return nodes.CallBlock(self.call_method("_render_body"), [], [], body).set_lineno(lineno)

    def _render_body(self, caller):
        return caller()


def make_environment():
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(format):
        return NOW.strftime(format)

    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[GenerationTag, jinja2.ext.loopcontrols]
    )
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def describe(error):
    return f"{type(error).__name__}: {error}"


def main():
    repo_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--templates", default=os.path.join(repo_root, "..", "shared", "golden", "templates"))
    parser.add_argument("--out", default=os.path.join(repo_root, "test", "fixtures", "templates"))
    parser.add_argument("--any-jinja", action="store_true", help="allow a jinja2 other than " + JINJA_VERSION)
    args = parser.parse_args()

    if jinja2.__version__ != JINJA_VERSION and not args.any_jinja:
        sys.exit(f"jinja2 {jinja2.__version__} found; the fixtures are made with {JINJA_VERSION} (--any-jinja to override)")
    paths = sorted(glob.glob(os.path.join(args.templates, "*.jinja")))
    if not paths:
        sys.exit(f"no *.jinja templates in {args.templates}")
    os.makedirs(args.out, exist_ok=True)
    for old in glob.glob(os.path.join(args.out, "*.txt")):
        os.remove(old)

    env = make_environment()
    expected = {}
    sources = {}
    rendered = failed = 0
    for path in paths:
        name = os.path.basename(path)[: -len(".jinja")]
        with open(path, "rb") as f:
            raw = f.read()
        sources[name] = hashlib.sha256(raw).hexdigest()
        expected[name] = {}
        try:
            template = env.from_string(raw.decode("utf-8"))
            compile_error = None
        except Exception as error:  # a template that does not parse fails every case
            template, compile_error = None, describe(error)
        for case_name, case in CASES.items():
            if compile_error is not None:
                expected[name][case_name] = {"ok": False, "error": compile_error}
                failed += 1
                continue
            try:
                text = template.render(
                    messages=copy.deepcopy(case["messages"]),
                    tools=copy.deepcopy(case["tools"]),
                    documents=None,
                    add_generation_prompt=case["add_generation_prompt"],
                    bos_token=BOS_TOKEN,
                    eos_token=EOS_TOKEN,
                )
            except Exception as error:
                expected[name][case_name] = {"ok": False, "error": describe(error)}
                failed += 1
                continue
            with open(os.path.join(args.out, f"{name}.{case_name}.txt"), "wb") as f:
                f.write(text.encode("utf-8"))
            expected[name][case_name] = {"ok": True}
            rendered += 1

    inputs = {
        "generator": {
            "script": "scripts/make-template-fixtures.py",
            "jinja2": jinja2.__version__,
            "python": sys.version.split()[0],
        },
        "bos_token": BOS_TOKEN,
        "eos_token": EOS_TOKEN,
        "now": NOW.isoformat(),
        "cases": CASES,
        "template_sha256": sources,
    }
    with open(os.path.join(args.out, "inputs.json"), "w", encoding="utf-8") as f:
        json.dump(inputs, f, ensure_ascii=False, indent=2)
        f.write("\n")
    with open(os.path.join(args.out, "expected.json"), "w", encoding="utf-8") as f:
        json.dump(expected, f, ensure_ascii=False, indent=2)
        f.write("\n")
    print(f"{len(paths)} templates x {len(CASES)} cases: {rendered} rendered, {failed} raised -> {args.out}")


if __name__ == "__main__":
    main()
