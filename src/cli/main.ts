/**
 * The `switchyard` command: a thin shell over the library API (src/index.ts).
 * With no command it runs `info`: what this machine can do and how to go on.
 */
import { readFileSync } from 'node:fs';
import { Command, InvalidArgumentError as CommanderArgError } from 'commander';
import { SwitchyardError } from '../core/errors.js';
import { type BenchFlags, benchCommand } from './bench.js';
import { type ChatFlags, chatCommand } from './chat.js';
import { KERNEL_CHOICES, parseKernelChoice, parseThreads } from '../kernels/device.js';
import { convertCommand } from './convert.js';
import { type ExpertsFlags, expertsCommand, withExpertOptions } from './experts.js';
import {
  type AnalyzeFlags,
  analyzeCommand,
  type SteerFlags,
  steerCommand,
  type TraceFlags,
  traceCommand,
  withRoutingOptions,
} from './routing.js';
import { type RunFlags, runCommand, withSamplingOptions } from './generate.js';
import { type ServeFlags, serveCommand } from './serve.js';
import { info } from './info.js';
import { inspect } from './inspect.js';
import { type LogitsFlags, logitsCommand } from './logits.js';
import type { GlobalOptions } from './options.js';
import { type PerplexityFlags, perplexityCommand } from './perplexity.js';
import { type TokenizeOptions, tokenize } from './tokenize.js';
import { type TrainFlags, trainCommand } from './train.js';

function argParser<T>(parse: (v: string, source: string) => T, flag: string) {
  return (value: string): T => {
    try {
      return parse(value, flag);
    } catch (e) {
      throw new CommanderArgError((e as Error).message);
    }
  };
}

function parsePositiveInt(value: string, flag: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${flag} must be a whole number of at least 1, got '${value}'`);
  return n;
}

// src/cli and dist/cli are both two levels below the package root.
const VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('switchyard')
    .version(VERSION, '-v, --version', 'print the version')
    .description('Run, inspect and steer Mixture-of-Experts models on CPU with WebAssembly SIMD kernels.')
    .option('--threads <n>', 'threads for the kernels (default: all cores)', argParser(parseThreads, '--threads'))
    .option('--kernels <build>', `kernel build: ${KERNEL_CHOICES.join(', ')}`, argParser(parseKernelChoice, '--kernels'))
    .showHelpAfterError('(run switchyard --help for usage)');
  program
    .command('info', { isDefault: true })
    .description('show what this machine supports, which kernels are used, and check them')
    .option('--json', 'print the report as JSON')
    .action(async (cmdOpts: { json?: boolean }) => info({ ...program.opts<GlobalOptions>(), ...cmdOpts }));
  program
    .command('inspect')
    .description('show a model file: architecture, parameters (total and active per token), experts, quantization mix, tensors, memory')
    .argument('<model>', 'a GGUF file (for split models, any part) or a Hugging Face checkpoint folder')
    .option('--json', 'print the summary as JSON')
    .option('--tensors', 'list every tensor (the JSON always does)')
    .option('--expert-memory <size>', "what this expert budget implies (4GiB, 25%, all): experts held at once, what stays resident")
    .action(async (model: string, cmdOpts: { json?: boolean; tensors?: boolean; expertMemory?: string }) => inspect(model, cmdOpts));
  program
    .command('convert')
    .description('convert a Hugging Face checkpoint folder (config.json, safetensors, tokenizer.json) to a GGUF file')
    .argument('<hf-folder>', 'folder with config.json and model.safetensors (or shards + model.safetensors.index.json)')
    .argument('<out.gguf>', 'the GGUF file to write')
    .option('--type <type>', 'weight type: f32, f16, bf16, q8_0, or auto (bf16/f16 as the checkpoint stores them)', 'auto')
    .option('--name <name>', 'general.name (default: from config.json _name_or_path, else the folder name)')
    .action(async (hfFolder: string, outFile: string, cmdOpts: { type?: string; name?: string }) =>
      convertCommand(hfFolder, outFile, cmdOpts),
    );
  program
    .command('tokenize')
    .description("print a text's token ids (adding BOS/EOS as the model says, like llama-tokenize), or decode ids")
    .argument('<model>', 'a GGUF file, a Hugging Face folder, or a tokenizer.json')
    .argument('[text]', 'the text (or, with --decode, ids like "1 2 3")')
    .option('--json', 'print one JSON array of ids (with --decode: a JSON string)')
    .option('--decode', 'turn ids back into text')
    .option('--no-special', 'do not add BOS/EOS')
    .option('--no-parse-special', 'read special-token text such as <|im_end|> as plain text')
    .option('--file <path>', 'read the text from a file')
    .action(async (model: string, text: string | undefined, cmdOpts: TokenizeOptions) => tokenize(model, text, cmdOpts));
  withRoutingOptions(withExpertOptions(withSamplingOptions(
    program
      .command('run')
      .description('generate text: stream a continuation of the prompt, then print the speed')
      .argument('[model]', 'a GGUF file (with no model: the embedded default, once it exists)')
      .argument('[prompt]', 'the prompt (or -p, or piped to stdin)')
      .option('-p, --prompt <text>', 'the prompt'),
  ))).action(async (model: string | undefined, prompt: string | undefined, cmdOpts: RunFlags) =>
    runCommand(model, prompt, cmdOpts, program.opts<GlobalOptions>()),
  );
  withRoutingOptions(withExpertOptions(withSamplingOptions(
    program
      .command('chat')
      .description('chat with a model through its chat template (/reset, /exit)')
      .argument('[model]', 'a GGUF file')
      .option('--system <text>', 'a system message to start the conversation with'),
  ))).action(async (model: string | undefined, cmdOpts: ChatFlags) => chatCommand(model, cmdOpts, program.opts<GlobalOptions>()));
  program
    .command('logits')
    .description('write the logits of every position of a token sequence (little-endian float32 [n_tokens, n_vocab])')
    .argument('<model>', 'a GGUF file')
    .option('--tokens <ids>', 'token ids, e.g. 1,415,2936')
    .option('--out <file>', 'the output file')
    .option('--dequantize', 'compute in float32 on dequantized weights (the reference path)')
    .option('--kv-cache <type>', 'KV cache type: f16 or f32 (default f16; the goldens use f32)')
    .action(async (model: string, cmdOpts: LogitsFlags) => logitsCommand(model, cmdOpts, program.opts<GlobalOptions>()));
  withRoutingOptions(withExpertOptions(program
    .command('perplexity')
    .description("perplexity of a text file, computed as llama.cpp's llama-perplexity does")
    .argument('<model>', 'a GGUF file')
    .option('-f, --file <file>', 'the text (one trailing newline is dropped, as llama.cpp does)')
    .option('--ctx <n>', 'tokens per chunk (llama-perplexity -c)', '512')
    .option('--batch <n>', 'tokens per evaluation (llama-perplexity -b; default: --ctx)')
    .option('--json', 'end with one JSON line: {"chunks": [running values], "final": <number>}')
    .option('--dequantize', 'compute in float32 on dequantized weights (the reference path)')
    .option('--kv-cache <type>', 'KV cache type: f16 or f32 (default f16; the goldens use f32)')), false)
    .action(async (model: string, cmdOpts: PerplexityFlags) => perplexityCommand(model, cmdOpts, program.opts<GlobalOptions>()));
  program
    .command('train')
    .description('train a MoE (or dense) model from a JSON config: tokenizer, training with held-out evaluation and checkpoints, GGUF export')
    .requiredOption('--config <file>', 'the training config (see recipes/ for examples)')
    .option('--fresh', 'start over even when the output folder has a checkpoint (default: resume)')
    .option('--stop-after <steps>', 'stop after this many steps in this run (resume later)', argParser(parsePositiveInt, '--stop-after'))
    .action(async (cmdOpts: Omit<TrainFlags, keyof GlobalOptions>) => trainCommand({ ...program.opts<GlobalOptions>(), ...cmdOpts }));
  withRoutingOptions(program
    .command('trace')
    .description("record a text's routing: every token's experts, weights, top router logits and entropy in every MoE layer")
    .argument('[model]', 'a GGUF file (default: the embedded model)')
    .option('-f, --file <file>', 'the text')
    .option('--out <file>', 'the trace: .jsonl (readable) or .bin (compact)')
    .option('--ctx <n>', 'tokens per evaluation (default 512)')
    .option('--peaks', "also record each expert's peak output (for super experts; slower)"), false)
    .action(async (model: string | undefined, cmdOpts: TraceFlags) => traceCommand(model, cmdOpts, program.opts<GlobalOptions>()));
  program
    .command('analyze')
    .description('figures of a routing trace: expert load, router entropy, inter-layer affinity, routing consistency, simulated cache hit rates, super experts')
    .argument('<trace>', 'a trace written by switchyard trace')
    .option('--json', 'print the analysis as JSON')
    .option('--html <file>', 'also write a self-contained HTML report with heatmaps and charts')
    .option('--budgets <slots>', 'cache sizes to simulate, in expert slots shared by all layers, e.g. 8,16,32 (default: 10%, 25%, 50% of all experts)')
    .action(async (trace: string, cmdOpts: AnalyzeFlags) => analyzeCommand(trace, cmdOpts));
  program
    .command('steer')
    .description('find experts to steer: those text A selects more than text B, or those that fire with marker words; write a steering profile for --steer')
    .argument('[model]', 'a GGUF file (default: the embedded model)')
    .option('--a <file>', 'prompt set A, one prompt per line (its experts are ranked up)')
    .option('--b <file>', 'prompt set B, one prompt per line (the contrast)')
    .option('-f, --file <file>', 'one text, with --markers')
    .option('--markers <words>', 'marker words, comma-separated: rank experts by nPMI with their tokens')
    .option('--out <file>', 'write a steering profile')
    .option('--action <what>', 'what the profile does to the top experts: ban, force or boost (default boost)')
    .option('--count <n>', 'how many experts the profile names (default 4)')
    .option('--factor <f>', 'boost factor (default 2)')
    .option('--ctx <n>', 'tokens per evaluation (default 512)')
    .action(async (model: string | undefined, cmdOpts: SteerFlags) => steerCommand(model, cmdOpts, program.opts<GlobalOptions>()));
  withExpertOptions(program
    .command('serve')
    .description('an OpenAI-compatible HTTP server (/v1/chat/completions, /v1/completions, /v1/models, /health, /metrics) and a live page at / that shows the experts firing')
    .argument('[model]', 'a GGUF file (default: the embedded model)')
    .option('--host <host>', 'address to bind (default 127.0.0.1: this machine only)')
    .option('--port <port>', 'port (default 8080; 0 = any free port)')
    .option('--api-key <key>', 'require Authorization: Bearer <key> on every /v1 request')
    .option('--cors', 'allow browsers on other origins (Access-Control-Allow-Origin: *)')
    .option('--parallel <n>', 'requests generating at once, their steps batched; each has its own KV cache of --ctx (default 4)')
    .option('--max-queue <n>', 'requests waiting at most before 429 (default 16)')
    .option('--ctx <n>', "context length: prompt + generated tokens (default: the model's, at most 4096)")
    .option('--kv-cache <type>', 'KV cache type: f16 or f32 (default f16)'))
    .action(async (model: string | undefined, cmdOpts: ServeFlags) => serveCommand(model, cmdOpts, program.opts<GlobalOptions>()));
  program
    .command('experts')
    .description('measure how often each routed expert is used on a text, and write a profile whose busiest experts --pin keeps resident')
    .argument('[model]', 'a GGUF file (default: the embedded model)')
    .option('-f, --file <file>', 'the calibration text')
    .option('--out <file>', 'write the profile (JSON) here')
    .option('--top <n>', 'experts in the pin list (default: as many per layer as a token uses)')
    .option('--ctx <n>', 'tokens per evaluation (default 512)')
    .option('--json', 'print the profile as JSON')
    .action(async (model: string | undefined, cmdOpts: ExpertsFlags) => expertsCommand(model, cmdOpts, program.opts<GlobalOptions>()));
  withExpertOptions(program
    .command('bench')
    .description('prompt processing and decode speed at 1 thread and at all threads, and peak memory')
    .argument('<model>', 'a GGUF file')
    .option('--prompt-tokens <n>', 'prompt length', '64')
    .option('--decode-tokens <n>', 'decoded tokens', '32')
    .option('--json', 'end with one JSON line: {"model", "results": [...], "peak_rss_bytes"}'))
    .action(async (model: string, cmdOpts: BenchFlags) => benchCommand(model, cmdOpts, program.opts<GlobalOptions>()));
  return program;
}

export async function main(argv: string[]): Promise<void> {
  try {
    await buildProgram().parseAsync(argv);
  } catch (e) {
    if (e instanceof SwitchyardError) {
      process.stderr.write(`switchyard: ${e.message}\n`);
      process.exitCode = 2;
      return;
    }
    throw e;
  }
}
