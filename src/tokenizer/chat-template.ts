/**
 * Chat templates: turn a conversation into the prompt text a model was trained on, by rendering
 * the model's Jinja template (GGUF `tokenizer.chat_template`, or `chat_template` in a Hugging Face
 * tokenizer_config.json) with @huggingface/jinja.
 *
 * Reference: transformers' apply_chat_template (src/transformers/utils/chat_template_utils.py:
 * _compile_jinja_template, render_jinja_template). It renders with trim_blocks and lstrip_blocks,
 * the loopcontrols extension and the `{% generation %}` tag, the globals raise_exception and
 * strftime_now, a tojson filter that does not escape HTML and keeps key order, and the variables
 * messages, tools (None when absent), documents (None), add_generation_prompt, bos_token,
 * eos_token and any extra keyword arguments. We set up the same context, and patch the parsed
 * template where @huggingface/jinja 0.5.11 departs from jinja2 (rewriteForPython, below). What
 * still differs is listed in test/unit/chat-template.test.ts (KNOWN_DIFFERENCES).
 *
 * Messages are taken in the OpenAI chat-completions shape and adapted the way llama.cpp
 * (common/chat.cpp) adapts them, because templates are written for the transformers shape:
 *   - tool_calls[].function.arguments given as a JSON string (what OpenAI clients send) is parsed
 *     into the value it encodes: templates expect an object (they print it with tojson or iterate
 *     its items), as transformers' documentation asks; text that is not JSON is passed unchanged;
 *   - content given as an array of parts has its text parts joined with "\n" into one string;
 *     other part types (image_url, input_audio...) are refused: Switchyard models read text.
 * The caller's messages are never modified.
 */
import { Environment, Interpreter, Template } from '@huggingface/jinja';
import { SwitchyardError } from '../core/errors.js';
import { rewriteForPython, toJinja, PYTHON_COMPAT, COMPAT_PREFIX, pythonRange, strftime } from './jinja-python.js';

/** One content part of a message, as OpenAI sends it. Only text parts can be rendered. */
export interface ChatContentPart {
  type: string;
  text?: string;
}

/** A tool call made by the assistant (OpenAI shape). */
export interface ChatToolCall {
  id?: string;
  type?: string;
  function: {
    name: string;
    /** An object, or its JSON text as OpenAI sends it (parsed before rendering). */
    arguments: string | Record<string, unknown>;
  };
}

export interface ChatMessage {
  /** 'system', 'user', 'assistant' or 'tool'; each template decides which roles it accepts. */
  role: string;
  content?: string | ChatContentPart[] | null;
  tool_calls?: ChatToolCall[];
  /** On a 'tool' message: the id of the call it answers. */
  tool_call_id?: string;
  /** On a 'tool' message: the tool's name (some templates print it). */
  name?: string;
  /** The assistant's reasoning (thinking) text, for templates that show or drop it. */
  reasoning_content?: string;
  /** Other fields some templates read (e.g. `thinking` in gpt-oss) are passed on unchanged. */
  [field: string]: unknown;
}

/** A tool offered to the model (OpenAI shape: { type: 'function', function: { name, description, parameters } }). */
export type ChatTool = Record<string, unknown>;

export interface ChatRenderOptions {
  /** End with the header of an assistant turn, so that the model writes the reply. */
  addGenerationPrompt: boolean;
  /** Tools offered to the model; absent: None in the template, as in transformers. */
  tools?: ChatTool[];
  /** The time strftime_now() formats (local time, like Python's datetime.now()); default: now. */
  now?: Date;
  /** Extra template variables (transformers' **kwargs), e.g. { enable_thinking: false }; they win. */
  extra?: Record<string, unknown>;
}

export interface ChatTemplateOptions {
  bosToken: string;
  eosToken: string;
  /** Names the template in error messages (e.g. the model file); default: the start of the source. */
  name?: string;
}

/** A chat template that does not parse or render, or a conversation it cannot render. */
export class ChatTemplateError extends SwitchyardError {
  /** The template's name (or a description of its source). */
  readonly template: string;
  /** What failed: parsing the text, rendering, the template's own raise_exception, or the input. */
  readonly stage: 'parse' | 'render' | 'raise_exception' | 'input';
  /** The message the template passed to raise_exception (stage 'raise_exception'). */
  readonly templateMessage?: string;

  constructor(
    message: string,
    details: { template: string; stage: ChatTemplateError['stage']; templateMessage?: string; cause?: unknown },
  ) {
    super('E_CHAT_TEMPLATE', message);
    this.template = details.template;
    this.stage = details.stage;
    this.templateMessage = details.templateMessage;
    if (details.cause !== undefined) this.cause = details.cause;
  }
}

/**
 * ChatML (`<|im_start|>role\ncontent<|im_end|>\n`, then `<|im_start|>assistant\n`), what llama.cpp
 * and transformers fell back to for models without a template. See chatTemplateOrChatML.
 */
export const CHATML_TEMPLATE =
  "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + " +
  "(message['content'] if message['content'] is string else '') + '<|im_end|>\\n' }}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

// Thrown by the template's raise_exception(); told apart from engine errors in render().
class TemplateRaised extends Error {}

export class ChatTemplate {
  readonly source: string;
  readonly name: string;
  readonly bosToken: string;
  readonly eosToken: string;
  private readonly template: Template;

  /** Parses the template at once: one that does not parse throws ChatTemplateError here. */
  constructor(source: string, options: ChatTemplateOptions) {
    this.source = source;
    this.name = options.name ?? describeSource(source);
    this.bosToken = options.bosToken;
    this.eosToken = options.eosToken;
    try {
      this.template = new Template(source);
      this.template.parsed = rewriteForPython(this.template.parsed);
    } catch (error) {
      throw new ChatTemplateError(
        `chat template ${this.name} does not parse: ${errorText(error)}. ` +
          'Check the template text (tokenizer.chat_template) or pass a corrected one.',
        { template: this.name, stage: 'parse', cause: error },
      );
    }
  }

  /** Renders a conversation into prompt text. Throws ChatTemplateError; never falls back. */
  render(messages: readonly ChatMessage[], options: ChatRenderOptions): string {
    const globals = new Environment();
    setGlobals(globals, options.now);
    const env = new Environment(globals); // variables shadow globals, as in jinja2
    const variables: Record<string, unknown> = {
      messages: messages.map((message, index) => this.prepareMessage(message, index)),
      tools: options.tools ?? null,
      documents: null,
      add_generation_prompt: options.addGenerationPrompt,
      bos_token: this.bosToken,
      eos_token: this.eosToken,
      ...options.extra,
    };
    // setVariable, not set: a variable may shadow an engine name (`namespace`), as kwargs do in Python.
    for (const [key, value] of Object.entries(variables)) env.setVariable(key, toJinja(value) as never);
    try {
      return String(new Interpreter(env).run(this.template.parsed).value);
    } catch (error) {
      if (error instanceof TemplateRaised) {
        throw new ChatTemplateError(`chat template ${this.name} refused the conversation: ${error.message}`, {
          template: this.name,
          stage: 'raise_exception',
          templateMessage: error.message,
        });
      }
      throw new ChatTemplateError(`chat template ${this.name} failed to render: ${errorText(error)}`, {
        template: this.name,
        stage: 'render',
        cause: error,
      });
    }
  }

  // OpenAI shape -> the shape templates expect (see the file comment); copies, never mutates.
  private prepareMessage(message: ChatMessage, index: number): Record<string, unknown> {
    const fail = (what: string) =>
      new ChatTemplateError(`chat template ${this.name}: message ${index} ${what}`, {
        template: this.name,
        stage: 'input',
      });
    if (typeof message !== 'object' || message === null || typeof message.role !== 'string') {
      throw fail('is not an object with a string role');
    }
    const out: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(message)) if (value !== undefined) out[key] = value;
    if (Array.isArray(message.content)) {
      const texts = message.content.map((part, p) => {
        if (part?.type !== 'text') {
          throw fail(`content part ${p} has type '${part?.type}'; only text parts can be rendered (text models only)`);
        }
        if (typeof part.text !== 'string') throw fail(`content part ${p} is a text part without a string text`);
        return part.text;
      });
      out.content = texts.join('\n');
    }
    if (Array.isArray(message.tool_calls)) {
      out.tool_calls = message.tool_calls.map((call) => {
        const args = call?.function?.arguments;
        if (typeof args !== 'string') return call;
        return { ...call, function: { ...call.function, arguments: parseJsonOr(args) } };
      });
    }
    return out;
  }
}

/**
 * The template a model ships (GGUF `tokenizer.chat_template`), or ChatML when it ships none
 * (undefined, null or blank). A template that exists but does not parse throws ChatTemplateError;
 * it is never replaced by ChatML silently.
 */
export function chatTemplateOrChatML(source: string | null | undefined, options: ChatTemplateOptions): ChatTemplate {
  if (source === undefined || source === null || source.trim() === '') {
    const name = options.name ?? 'ChatML (fallback: the model has no chat template)';
    return new ChatTemplate(CHATML_TEMPLATE, { ...options, name });
  }
  return new ChatTemplate(source, options);
}

/** What chatTemplateFor needs of a tokenizer (Tokenizer has it). */
export interface TemplateTokens {
  readonly chatTemplate: string | undefined;
  readonly bos: number | null;
  readonly eos: number | null;
  tokenToPiece(id: number): string;
}

/**
 * A model's chat template with its own BOS/EOS text filled in (ChatML when it ships none), as
 * llama.cpp's common_chat_templates_init does with the vocabulary's bos/eos tokens.
 */
export function chatTemplateFor(tokenizer: TemplateTokens, name?: string): ChatTemplate {
  const text = (id: number | null) => (id === null ? '' : tokenizer.tokenToPiece(id));
  return chatTemplateOrChatML(tokenizer.chatTemplate, { bosToken: text(tokenizer.bos), eosToken: text(tokenizer.eos), name });
}

function describeSource(source: string): string {
  const start = source.slice(0, 40).replace(/\s+/g, ' ');
  return `(${source.length} characters, starting "${start}${source.length > 40 ? '...' : ''}")`;
}

const errorText = (error: unknown) => (error instanceof Error ? error.message : String(error));

function parseJsonOr(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

// The globals of transformers' environment: jinja2's true/false/none and range, raise_exception,
// strftime_now (`namespace` is built into Environment), and our Python-compatibility functions.
function setGlobals(env: Environment, now: Date | undefined): void {
  const constants = { true: true, false: false, none: null, True: true, False: false, None: null };
  for (const [name, value] of Object.entries(constants)) env.set(name, value);
  env.set('range', pythonRange);
  env.set('raise_exception', (message: unknown) => {
    throw new TemplateRaised(String(message));
  });
  env.set('strftime_now', (format: unknown) => strftime(now ?? new Date(), String(format)));
  for (const [name, fn] of Object.entries(PYTHON_COMPAT)) {
    // A function value whose body takes and returns runtime values (Environment.set would hand it
    // plain JS values), so that None, Undefined, tuples and Markup stay distinct.
    (env.set(COMPAT_PREFIX + name, () => null) as { value: unknown }).value = fn;
  }
}
