/**
 * A conversation -> the prompt text a model continues, as llama.cpp's common_chat_templates_apply
 * builds it (common/chat.cpp at d32676d77): the model's template rendered with an assistant
 * generation prompt, then, because the tokenizer adds BOS (and EOS) itself, a leading BOS text
 * (and trailing EOS text) the template wrote is removed:
 *
 *   if (inputs.add_bos && string_starts_with(result, tmpl.bos_token())) result = result.substr(...)
 *   if (inputs.add_eos && string_ends_with(result, tmpl.eos_token())) result = result.substr(...)
 *
 * The text is then tokenized with add_special and parse_special (llama-cli, llama-server).
 */
import type { ChatMessage, ChatTemplate } from '../tokenizer/chat-template.js';

export function chatPromptText(
  template: ChatTemplate,
  messages: readonly ChatMessage[],
  vocabulary: { readonly addBos: boolean; readonly addEos: boolean },
): string {
  let text = template.render(messages, { addGenerationPrompt: true });
  const bos = template.bosToken;
  const eos = template.eosToken;
  if (vocabulary.addBos && bos !== '' && text.startsWith(bos)) text = text.slice(bos.length);
  if (vocabulary.addEos && eos !== '' && text.endsWith(eos)) text = text.slice(0, text.length - eos.length);
  return text;
}
