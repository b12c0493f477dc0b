/**
 * The server through LangChain's ChatOpenAI (@langchain/openai 1.0.x) on loopback, unchanged but
 * for its base URL: invoke and stream give the text the library's own greedy generation gives.
 */
import { ChatOpenAI } from '@langchain/openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findDefaultModel } from '../../src/api/default-model.js';
import { type LoadedModel, loadModel } from '../../src/api/model.js';
import { createServer, type SwitchyardServer } from '../../src/server/server.js';

const file = findDefaultModel();
let model: LoadedModel;
let server: SwitchyardServer;
let chat: ChatOpenAI;

async function libraryText(): Promise<string> {
  let text = '';
  for await (const e of model.chat([{ role: 'user', content: 'Tell me about the whale.' }], { temperature: 0, topP: 1, topK: 0, minP: 0, maxTokens: 12 })) {
    if (e.type === 'token') text += e.text;
  }
  return text;
}

describe.skipIf(!file)('the server with LangChain ChatOpenAI', () => {
  beforeAll(async () => {
    model = await loadModel(file as string, { threads: 2, contextLength: 256 });
    server = createServer(model, { apiKey: 'lc-key' });
    const { port } = await server.listen(0, '127.0.0.1');
    chat = new ChatOpenAI({
      model: 'switchyard-tiny-moe',
      apiKey: 'lc-key',
      temperature: 0,
      maxTokens: 12,
      configuration: { baseURL: `http://127.0.0.1:${port}/v1` },
    });
  });
  afterAll(async () => {
    await server?.close();
    await model?.close();
  });

  it('invoke: the same text as the library', async () => {
    const reply = await chat.invoke([['human', 'Tell me about the whale.']]);
    expect(reply.content).toBe(await libraryText());
    expect(reply.usage_metadata?.output_tokens).toBeGreaterThan(0);
  });

  it('stream: the chunks join to the same text', async () => {
    let text = '';
    for await (const chunk of await chat.stream([['human', 'Tell me about the whale.']])) text += String(chunk.content);
    expect(text).toBe(await libraryText());
  });
});
