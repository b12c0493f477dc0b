/**
 * The architectures Switchyard runs, by GGUF `general.architecture`: one file each, each
 * exporting `forward(step, tokens) -> logits [T, V]`.
 */
import type { Tensor } from '../core/tensor.js';
import type { Architecture } from './config.js';
import * as llama from './llama.js';
import type { Step } from './nn/layers.js';

export type Forward = (s: Step, tokens: readonly number[]) => Tensor;

export const ARCHITECTURES: Partial<Record<Architecture, Forward>> = {
  llama: llama.forward,
};
