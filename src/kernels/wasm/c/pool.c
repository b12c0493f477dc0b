// Thread pool core: run one kernel on `nth` threads that share this linear memory.
//
// The main thread and every worker run their own instance of this module over one
// shared WebAssembly.Memory. Workers sit in sy_worker_main(); the main thread calls
// sy_run(), which publishes the job, does share 0 itself and waits for the rest.
// Synchronisation is a generation counter: spin briefly, then memory.atomic.wait32
// (a futex), so idle workers sleep and do not starve the event loop on small machines.
// Reference: the ggml-cpu threadpool (ggml_graph_compute_thread, ggml_barrier).
#include "sy.h"

typedef struct {
  volatile int32_t gen;       // bumped once per job; workers wait on it
  volatile int32_t pending;   // workers of the current job not finished yet
  volatile int32_t sleepers;  // threads in atomic.wait on gen
  volatile int32_t quit;
  volatile uint32_t fn;  // kernel table index
  volatile int32_t nth;
  volatile int32_t bar_count;  // barrier arrivals in the current phase
  volatile int32_t bar_gen;    // barrier phase
  volatile int32_t spin;       // spin iterations before sleeping
  volatile int32_t failed;     // set when a thread trapped: waits give up, the pool is dead
} sy_pool_state;

static sy_pool_state pool = {.spin = 4096};
static sy_args args;

SY_EXPORT(sy_args_ptr) uint32_t sy_args_ptr(void) { return (uint32_t)(uintptr_t)&args; }
SY_EXPORT(sy_set_spin) void sy_set_spin(int32_t n) { pool.spin = n; }

SY_INLINE int32_t ld(volatile int32_t *p) { return __atomic_load_n(p, __ATOMIC_SEQ_CST); }

SY_EXPORT(sy_pool_gen) int32_t sy_pool_gen(void) { return ld(&pool.gen); }

// A kernel that traps on a worker never reaches the end of its share. The worker's JS sets
// this flag instead, so the calling thread stops waiting and the call reports the failure
// (abi.ts) rather than hanging; the pool is not used again.
SY_EXPORT(sy_set_failed) void sy_set_failed(void) {
  __atomic_store_n(&pool.failed, 1, __ATOMIC_SEQ_CST);
  __builtin_wasm_memory_atomic_notify((int32_t *)&pool.bar_gen, 0x7fffffffu);
}
SY_EXPORT(sy_failed) int32_t sy_failed(void) { return ld(&pool.failed); }

// Wait until *p != v: spin, then (workers only) sleep in the futex. The calling thread
// (tid 0) only spins: it waits only while its workers finish their share of a call,
// and memory.atomic.wait on Node's main thread was seen to miss wake-ups (V8 11.3).
static void wait_change(volatile int32_t *p, int32_t v, int tid) {
  for (int32_t i = 0, n = pool.spin; i < n || tid == 0; i++) {
    if (ld(p) != v || ld(&pool.failed)) return;
  }
  while (ld(p) == v && !ld(&pool.failed)) {
    __atomic_fetch_add(&pool.sleepers, 1, __ATOMIC_SEQ_CST);
    __builtin_wasm_memory_atomic_wait32((int32_t *)p, v, -1);
    __atomic_fetch_sub(&pool.sleepers, 1, __ATOMIC_SEQ_CST);
  }
}

static void wake_all(volatile int32_t *p) {
  if (ld(&pool.sleepers) > 0) __builtin_wasm_memory_atomic_notify((int32_t *)p, 0x7fffffffu);
}

// Run kernel `fn` (a table index from sy_kfn_*) on threads 0..nth-1; returns when all are done.
SY_EXPORT(sy_run) void sy_run(uint32_t fn, int32_t nth) {
  sy_kernel k = (sy_kernel)(uintptr_t)fn;
  if (nth <= 1) {
    k(0, 1, &args);
    return;
  }
  __atomic_store_n(&pool.fn, fn, __ATOMIC_SEQ_CST);
  __atomic_store_n(&pool.nth, nth, __ATOMIC_SEQ_CST);
  __atomic_store_n(&pool.pending, nth - 1, __ATOMIC_SEQ_CST);
  __atomic_fetch_add(&pool.gen, 1, __ATOMIC_SEQ_CST);
  wake_all(&pool.gen);
  k(0, nth, &args);
  int32_t left;
  while ((left = ld(&pool.pending)) != 0 && !ld(&pool.failed)) wait_change(&pool.pending, left, 0);
}

// A worker's whole life: wait for a job, run its share, report, repeat until sy_quit.
// `seen` is the job counter when the worker was spawned, so no job published since is missed.
SY_EXPORT(sy_worker_main) void sy_worker_main(int32_t tid, int32_t seen) {
  for (;;) {
    wait_change(&pool.gen, seen, tid);
    seen = ld(&pool.gen);
    if (ld(&pool.quit) || ld(&pool.failed)) return;
    int32_t nth = ld(&pool.nth);
    if (tid < nth) {
      uint32_t fn = __atomic_load_n(&pool.fn, __ATOMIC_SEQ_CST);
      ((sy_kernel)(uintptr_t)fn)(tid, nth, &args);
      if (__atomic_sub_fetch(&pool.pending, 1, __ATOMIC_SEQ_CST) == 0) wake_all(&pool.pending);
    }
  }
}

// Ask every worker to leave sy_worker_main.
SY_EXPORT(sy_quit) void sy_quit(void) {
  __atomic_store_n(&pool.quit, 1, __ATOMIC_SEQ_CST);
  __atomic_fetch_add(&pool.gen, 1, __ATOMIC_SEQ_CST);
  __builtin_wasm_memory_atomic_notify((int32_t *)&pool.gen, 0x7fffffffu);
}

void sy_barrier(int ith, int nth) {
  if (nth <= 1) return;
  int32_t phase = ld(&pool.bar_gen);
  if (__atomic_add_fetch(&pool.bar_count, 1, __ATOMIC_SEQ_CST) == nth) {
    __atomic_store_n(&pool.bar_count, 0, __ATOMIC_SEQ_CST);
    __atomic_fetch_add(&pool.bar_gen, 1, __ATOMIC_SEQ_CST);
    wake_all(&pool.bar_gen);
  } else {
    wait_change(&pool.bar_gen, phase, ith);
  }
}
