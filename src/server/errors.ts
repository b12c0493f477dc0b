/**
 * Errors the server answers with, in OpenAI's shape:
 *   {"error": {"message": "...", "type": "invalid_request_error", "param": "messages[0].role", "code": null}}
 * A request's fault is a 4xx naming the field (`param`); a library error thrown on purpose
 * (SwitchyardError) is mapped by its code; anything else is a 500 that never takes the server down.
 */
import { SwitchyardError } from '../core/errors.js';
import { ChatTemplateError } from '../tokenizer/chat-template.js';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly param: string | null = null,
    readonly code: string | null = null,
    readonly type: string = status >= 500 ? 'server_error' : 'invalid_request_error',
  ) {
    super(message);
    this.name = 'ApiError';
  }

  /** The JSON body OpenAI sends with an error. */
  body(): { error: { message: string; type: string; param: string | null; code: string | null } } {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

/** Library sampling option names -> the request fields they come from. */
const LIBRARY_FIELDS: Record<string, string> = {
  temperature: 'temperature',
  topP: 'top_p',
  frequencyPenalty: 'frequency_penalty',
  presencePenalty: 'presence_penalty',
  seed: 'seed',
  maxTokens: 'max_tokens',
};

/**
 * An error thrown while starting a generation -> the answer. `promptField` is the field the
 * prompt came from ('messages' or 'prompt'), named when the prompt does not fit the context.
 */
export function apiErrorOf(e: unknown, promptField: string): ApiError {
  if (e instanceof ApiError) return e;
  if (e instanceof SwitchyardError) {
    switch (e.code) {
      case 'E_CONTEXT_LENGTH':
        return new ApiError(400, e.message, promptField, 'context_length_exceeded');
      case 'E_INVALID_ARGUMENT':
      case 'E_UNSUPPORTED':
        return new ApiError(400, e.message, paramOf(e.message, promptField));
      case 'E_CHAT_TEMPLATE':
        // The template refused the conversation (or could not render it): the request's messages.
        if (e instanceof ChatTemplateError && e.stage === 'parse') break;
        return new ApiError(400, e.message, promptField);
      case 'E_BUSY':
      case 'E_CLOSED':
        return new ApiError(503, e.message, null, 'model_unavailable', 'server_error');
    }
  }
  return new ApiError(500, `internal error: ${e instanceof Error ? e.message : String(e)}`);
}

/** The request field a library message is about: "routing.topK must..." -> "switchyard.routing.topK". */
function paramOf(message: string, promptField: string): string | null {
  const routing = /^routing\.(\S+)/.exec(message);
  if (routing) return `switchyard.routing.${routing[1]}`;
  const sampling = /^sampling option (\w+)/.exec(message);
  if (sampling) return LIBRARY_FIELDS[sampling[1] as string] ?? null;
  if (/^maxTokens/.test(message)) return 'max_tokens';
  if (/^contrast/.test(message)) return 'switchyard.contrast';
  if (/prompt/.test(message)) return promptField;
  return null;
}
