/**
 * Worker threads for one kernel instance: each worker instantiates the same module over
 * the same shared memory, points its stack at its own region and enters
 * sy_worker_main(), where it waits on an Atomics counter for jobs (pool.c). The only
 * messages are one "ready" per worker at start; jobs never use postMessage.
 */
import { Worker } from 'node:worker_threads';
import type { Arena } from '../../core/heap.js';
import type { KernelBuild, KernelInstance } from './abi.js';
import { kernelModule } from './abi.js';

const WORKER_STACK_BYTES = 256 * 1024;

// Plain JavaScript so it runs the same from TypeScript sources (tests) and from dist/.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { module, memory, tid, stackTop, gen } = workerData;
let inst;
try {
  inst = new WebAssembly.Instance(module, { env: { memory } });
  inst.exports.__stack_pointer.value = stackTop;
  parentPort.postMessage({ ready: true });
  inst.exports.sy_worker_main(tid, gen);
} catch (e) {
  // A trap in a kernel: tell the calling thread (it stops waiting and reports the failure).
  if (inst) inst.exports.sy_set_failed();
  const text = String((e && e.stack) || e);
  require('node:fs').writeSync(2, 'switchyard: kernel worker ' + tid + ' failed: ' + text + String.fromCharCode(10));
  parentPort.postMessage({ error: text });
}
`;
export class ThreadPool {
  private constructor(
    private readonly instance: KernelInstance,
    private readonly workers: Worker[],
  ) {}

  /** Threads a kernel can use: the caller plus the workers. */
  get threads(): number {
    return this.workers.length + 1;
  }

  /** Start `threads - 1` workers for `instance`; stacks come from `arena`. */
  static async start(build: KernelBuild, instance: KernelInstance, arena: Arena, threads: number): Promise<ThreadPool> {
    const module = kernelModule(build);
    const gen = instance.exports.sy_pool_gen();
    const workers: Worker[] = [];
    const ready: Promise<void>[] = [];
    for (let tid = 1; tid < threads; tid++) {
      const stack = arena.alloc(WORKER_STACK_BYTES, `stack of worker ${tid}`);
      const w = new Worker(WORKER_SOURCE, {
        eval: true,
        // An inherited --input-type=module would run this CommonJS source as a module.
        execArgv: process.execArgv.filter((a) => !a.startsWith('--input-type')),
        workerData: { module, memory: instance.memory, tid, stackTop: stack.offset + stack.bytes, gen },
      });
      workers.push(w);
      ready.push(
        new Promise((resolve, reject) => {
          w.once('message', (m: { ready?: boolean; error?: string }) =>
            m.ready ? resolve() : reject(new Error(`kernel worker ${tid} failed to start: ${m.error}`)),
          );
          w.once('error', reject);
        }),
      );
    }
    try {
      await Promise.all(ready);
      for (const w of workers) w.unref(); // an idle pool never keeps the process alive
    } catch (e) {
      instance.exports.sy_quit();
      await Promise.all(workers.map((w) => w.terminate()));
      throw e;
    }
    return new ThreadPool(instance, workers);
  }

  /** Stop every worker (they leave their wait loop and exit). */
  dispose(): void {
    this.instance.markDisposed();
    this.instance.exports.sy_quit();
    for (const w of this.workers) void w.terminate();
    this.workers.length = 0;
  }
}
