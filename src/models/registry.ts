/**
 * The architectures Switchyard runs, by GGUF `general.architecture`: one file each, each
 * exporting `forward(step, tokens) -> logits [T, V]`.
 */
import type { Tensor } from '../core/tensor.js';
import type { Architecture } from './config.js';
import * as deepseek2 from './deepseek2.js';
import * as gptOss from './gpt-oss.js';
import * as granitemoe from './granitemoe.js';
import * as llama from './llama.js';
import type { Step } from './nn/layers.js';
import * as olmoe from './olmoe.js';
import * as phimoe from './phimoe.js';
import * as qwen2moe from './qwen2moe.js';
import * as qwen3moe from './qwen3moe.js';

export type Forward = (s: Step, tokens: readonly number[]) => Tensor;

export const ARCHITECTURES: Partial<Record<Architecture, Forward>> = {
  llama: llama.forward,
  qwen2moe: qwen2moe.forward,
  qwen3moe: qwen3moe.forward,
  olmoe: olmoe.forward,
  deepseek2: deepseek2.forward,
  granitemoe: granitemoe.forward,
  phimoe: phimoe.forward,
  'gpt-oss': gptOss.forward,
};
