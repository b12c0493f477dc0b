/**
 * `switchyard info` (the default command): what this machine supports, which kernels are in
 * use, and a kernel self-check against the TypeScript reference.
 */
import { GGMLType } from '../core/dtypes.js';
import { f32Tensor } from '../core/tensor.js';
import { type Device, KERNEL_CHOICES, createDevice } from '../kernels/device.js';
import { RefBackend } from '../kernels/ref/index.js';
import type { GlobalOptions } from './options.js';

/** Multiply a small random matrix on the chosen kernels and on the reference; report agreement. */
function selfCheck(dev: Device): { ok: boolean; worst: number } {
  const ref = new RefBackend();
  const arena = dev.heap.arena('self-check');
  let worst = 0;
  let seed = 12345;
  const rand = () => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed / 2 ** 32 - 0.5;
  };
  try {
    const w = f32Tensor(arena, [96, 320], Array.from({ length: 96 * 320 }, rand));
    const x = f32Tensor(arena, [3, 320], Array.from({ length: 3 * 320 }, rand));
    const a = f32Tensor(arena, [3, 96]);
    const b = f32Tensor(arena, [3, 96]);
    dev.backend.matmul(a, w, x);
    ref.matmul(b, w, x);
    const av = a.f32();
    const bv = b.f32();
    for (let i = 0; i < av.length; i++) worst = Math.max(worst, Math.abs(av[i] - bv[i]));
  } finally {
    arena.reset();
  }
  return { ok: worst < 1e-4, worst };
}

export async function info(opts: GlobalOptions & { json?: boolean }): Promise<void> {
  const dev = await createDevice({ kernels: opts.kernels, threads: opts.threads });
  try {
    const caps = dev.capabilities;
    const check = selfCheck(dev);
    const report = {
      node: caps.node,
      v8: caps.v8,
      simd128: caps.simd128,
      relaxedSimd: caps.relaxedSimd,
      relaxedSimdNote: caps.relaxedSimdNote,
      threadsSupported: caps.threads,
      cores: caps.cores,
      kernels: dev.backend.name,
      threads: dev.backend.threads,
      selfCheck: check.ok ? 'passed' : `FAILED (max difference ${check.worst})`,
      kernelTypes: Object.keys(GGMLType).length,
    };
    if (opts.json) {
      process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
      return;
    }
    const yes = (b: boolean) => (b ? 'yes' : 'no');
    const lines = [
      'Switchyard: a Mixture-of-Experts engine for TypeScript',
      '',
      `  Node.js ${caps.node} (V8 ${caps.v8}), ${caps.cores} cores`,
      `  WebAssembly SIMD128: ${yes(caps.simd128)}   relaxed SIMD: ${yes(caps.relaxedSimd)}${caps.relaxedSimdNote ? ` (${caps.relaxedSimdNote})` : ''}   threads: ${yes(caps.threads)}`,
      `  kernels in use: ${dev.backend.name} on ${dev.backend.threads} thread${dev.backend.threads === 1 ? '' : 's'} (choose with --kernels ${KERNEL_CHOICES.join('|')} and --threads N, or SWITCHYARD_KERNELS / SWITCHYARD_THREADS)`,
      `  kernel self-check: ${report.selfCheck}`,
      '',
      'This version runs MoE models from GGUF files (llama/Mixtral, Qwen2-MoE, Qwen3-MoE, OLMoE,',
      'DeepSeek-V2/V3, gpt-oss, Granite-MoE, Phi-MoE) on its own WebAssembly kernels, reads and',
      'writes GGUF and safetensors, converts Hugging Face checkpoints, tokenizes like llama.cpp, and',
      'trains MoE models on CPU. It ships a small MoE model it trained itself (16 experts per layer).',
      '',
      'Next steps:',
      '  switchyard run "The state of the Union"   generate with the embedded model (or: run <model.gguf> "prompt")',
      '  switchyard train --config recipes/tiny-moe.json   train a MoE model (how the embedded one was made)',
      '  switchyard chat <model.gguf>               chat through the model\'s template',
      '  switchyard inspect <model.gguf>            parameters, experts, quantization mix, memory',
      '  switchyard tokenize <model.gguf> "text"    token ids as llama.cpp gives them',
      '  switchyard convert <hf-folder> <out.gguf>  a Hugging Face checkpoint to GGUF (--type f32|f16|bf16|q8_0)',
      '  npm run bench:kernels                      measure kernel throughput on this machine',
      '  switchyard info --json                     this report as JSON',
      '  switchyard --help                          all commands and options',
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
    if (!check.ok) process.exitCode = 1;
  } finally {
    dev.dispose();
  }
}

