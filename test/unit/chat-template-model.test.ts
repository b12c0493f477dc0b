// A model's own chat template from its GGUF, with its BOS/EOS text: phi-3's template (shipped in
// the phimoe golden) renders as its source says; a model without one gets ChatML.
import { describe, expect, it } from 'vitest';
import { GGUFFile } from '../../src/formats/gguf/index.js';
import { chatTemplateFor, tokenizerFromGGUF } from '../../src/tokenizer/index.js';
import { goldenPath, skipGolden } from '../helpers/golden.js';

async function templateOf(model: string) {
  const g = await GGUFFile.open(goldenPath(model, `${model}-Q4_K_M.gguf`));
  try {
    return chatTemplateFor(tokenizerFromGGUF(g.metadata), model);
  } finally {
    await g.close();
  }
}
const conversation = [
  { role: 'system' as const, content: 'Be brief.' },
  { role: 'user' as const, content: 'Hi' },
  { role: 'assistant' as const, content: 'Hello.' },
  { role: 'user' as const, content: 'Who are you?' },
];

describe.skipIf(skipGolden('model chat templates'))('chatTemplateFor', () => {
  it("phimoe: phi-3's template with BOS <s> (it drops system messages)", async () => {
    const t = await templateOf('phimoe');
    expect(t.render(conversation, { addGenerationPrompt: true })).toBe(
      '<s><|user|>\nHi<|end|>\n<|assistant|>\nHello.<|end|>\n<|user|>\nWho are you?<|end|>\n<|assistant|>\n',
    );
  });

  it('qwen3moe (deepseek-coder vocabulary, no template): ChatML', async () => {
    const t = await templateOf('qwen3moe');
    expect(t.render(conversation.slice(0, 2), { addGenerationPrompt: true })).toBe(
      '<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n',
    );
  });
});
