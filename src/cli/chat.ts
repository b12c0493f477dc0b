/**
 * `switchyard chat [model]`: an interactive conversation through the model's chat template
 * (ChatML when the file has none), like llama-cli's conversation mode. Each line typed is a user
 * message; the reply streams to stdout and its figures go to stderr. The whole conversation is
 * sent each turn (the library starts a fresh sequence per call). /exit (or /quit, or end of
 * input) ends; /reset forgets the conversation; /stats prints the last reply's figures, the
 * expert cache's and the memory in use. Input may be piped: one message per line.
 * Ctrl-C stops a reply; a second one exits.
 */
import { createInterface } from 'node:readline';
import type { GenerateStats } from '../api/model.js';
import { ContextLengthError } from '../generate/kv-cache.js';
import type { ChatMessage } from '../tokenizer/chat-template.js';
import { abortOnInterrupt, contextFlag, kvCacheFlag, modelArgument, openModel, type SamplingFlags, samplingOptions, statsLine, streamText } from './generate.js';
import { type ExpertFlags, expertLoadOptions, printExpertStats } from './experts.js';
import type { GlobalOptions } from './options.js';
import { type RoutingFlags, routingOptions } from './routing.js';

export interface ChatFlags extends SamplingFlags, ExpertFlags, RoutingFlags {
  system?: string;
}

const HELP = 'type a message and press Enter; /reset forgets the conversation, /stats shows the last reply\'s figures and memory, /exit ends';

export async function chatCommand(modelArg: string | undefined, flags: ChatFlags, global: GlobalOptions): Promise<void> {
  const file = modelArgument(modelArg, 'chat');
  const options = { ...samplingOptions(flags), ...routingOptions(flags) };
  const contextLength = contextFlag(flags.ctx);
  const model = await openModel(file, global, { contextLength, kvCacheType: kvCacheFlag(flags.kvCache), ...expertLoadOptions(flags) });
  const interactive = process.stdin.isTTY === true;
  const rl = createInterface({ input: process.stdin, output: process.stdout, terminal: interactive });
  const start: ChatMessage[] = flags.system ? [{ role: 'system', content: flags.system }] : [];
  let messages = [...start];
  // On a terminal readline reads Ctrl-C as a key: it stops the reply, or ends the chat.
  let replying: AbortController | undefined;
  let last: GenerateStats | undefined;
  rl.on('SIGINT', () => (replying ? replying.abort() : rl.close()));
  try {
    if (interactive) process.stderr.write(`${model.info.name ?? model.info.architecture}: ${HELP}\n`);
    rl.setPrompt('> ');
    if (interactive) rl.prompt();
    for await (const line of rl) {
      const input = line.trim();
      if (input === '/exit' || input === '/quit') break;
      if (input === '/reset') {
        messages = [...start];
        process.stderr.write('(conversation cleared)\n');
      } else if (input === '/stats') {
        process.stderr.write(last ? `${statsLine(last)}\n` : '(no reply yet)\n');
        printExpertStats(model, { stats: true });
      } else if (input.startsWith('/')) {
        process.stderr.write(`unknown command ${input}: ${HELP}\n`);
      } else if (input !== '') {
        messages.push({ role: 'user', content: line });
        const controller = new AbortController();
        const release = abortOnInterrupt(controller);
        replying = controller;
        try {
          const { text, stats } = await streamText(model.chat(messages, { ...options, signal: controller.signal }));
          process.stdout.write('\n');
          process.stderr.write(`${statsLine(stats)}\n`);
          last = stats;
          printExpertStats(model, flags);
          messages.push({ role: 'assistant', content: text });
        } catch (e) {
          if (!(e instanceof ContextLengthError)) throw e;
          messages.pop();
          process.stderr.write(`switchyard: ${e.message} (type /reset to start a new conversation)\n`);
        } finally {
          replying = undefined;
          release();
        }
      }
      if (interactive) rl.prompt();
    }
  } finally {
    rl.close();
    await model.close();
  }
}
