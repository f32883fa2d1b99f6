/*
 * The vCPU's native hot path (docs/PERF.md, "Native fast path"): unicorn calls these directly, without a koffi
 * trampoline into JS (~30 ns instead of ~220 ns per call).
 *
 *  - fp_mmio_read / fp_mmio_write serve the vpl011 page's hot accesses (FR reads, DR writes, DR reads, and the
 *    interrupt registers a driver touches per interrupt: RIS/MIS/IMSC reads, ICR/IMSC writes) against
 *    the shared-memory console ring and the device's hot state (src/device/hot-state.ts: the same words the
 *    TypeScript Vpl011 and ConsoleRing use, so either implementation serves the next access). Anything else (a
 *    cold register, a refused width, a full or empty or corrupt ring, a moved doorbell, a spinning FR poll, the
 *    path disabled) goes to the JS callback unchanged, before any state is touched. Effects the C path cannot do
 *    (drive the interrupt line, notify the backend, report a corruption found after publishing an index) are left
 *    to Vpl011.nativeTail() after the state is updated, in the device's order.
 *  - fp_msr filters unicorn's MSR hook: only timer registers (CNTV_*) and safe-point requests (a doorbell move, a
 *    JS trip that asked for one, the timer's next check time, every MSR_PERIOD-th MSR) reach JS.
 *  - fp_exc_enter is SyncEntry.enter (src/cpu/exception.ts) in one call: the same uc_reg_* calls in the same order,
 *    made from C (a koffi call into unicorn costs 200-500 ns; an exception entry made ~10 of them).
 *
 * The TypeScript device (src/device/vpl011.ts, ring.ts) is the specification: each function below is a
 * transliteration of a named TypeScript method; test/native-fastpath.test.ts runs both on the same access streams.
 * Ring indices are published with the same store-then-load (Dekker) order as ConsoleRing (seq_cst atomics).
 *
 * Built by scripts/build-native.sh (called from scripts/setup.sh); loaded through koffi by src/cpu/native.ts.
 */
#define _POSIX_C_SOURCE 200809L
#include <dlfcn.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#if defined(__x86_64__)
#include <cpuid.h>
#include <x86intrin.h>
#define FP_HAVE_TSC 1
#else
#define FP_HAVE_TSC 0
#endif

/* hot-state.ts HotWord / HotF64 / HOT_LAYOUT */
#define HS_OUT_PROD 0
#define HS_OUT_CONS_SEEN 1
#define HS_IN_CONS 2
#define HS_IN_PROD_SEEN 3
#define HS_RING_IN_LEVEL 4
#define HS_RING_OUT_LEVEL 5
#define HS_FR 6
#define HS_RIS 7
#define HS_IMSC 8
#define HS_LINE 9
#define HS_TXI_MAX_OUT 10
#define HS_RXI_MIN_IN 11
#define HS_RX_ON 12
#define HS_TX_OFF 13
#define HS_WARNED_TX_OFF 14
#define HS_DEV_IN_LEVEL 15
#define HS_DEV_OUT_LEVEL 16
#define HS_FIFO_DEPTH 17
#define HS_JS_ONLY 18
#define HS_RT_MODE 19 /* receive-timeout.ts RtMode: 0 untimed (RT = data present), 1 waiting (RT clear), 2 due */
#define HS_ENABLED 20
#define HS_LAST_FR 21 /* shared with Machine's FR spin detection (machine.ts lastFr / frRepeats) */
#define HS_FR_REPEATS 22
#define HS_LAST_DOORBELL 23
#define HS_POLLS 24
#define HS_WANT_SAFE 25
#define HS_SAFE_DOORBELL 26
#define HS_MSR_SINCE 27
#define HS_MAGIC 31
#define HF_BYTES_OUT 0
#define HF_BYTES_IN 1
#define HF_TX_WHILE_DISABLED 2
#define HF_NATIVE_MMIO 3
#define HF_MSR_TOTAL 4
#define HF_MSR_PASSED 5
#define HF_TIMER_CHECK_MONO_MS 6
#define HOT_LAYOUT 0x70110003
#define HOT_F64_OFFSET 128

/* access-trace.ts: the header words, the record layout (TRACE_RECORD_BYTES = 12 words) and TRACE_LAYOUT */
#define TR_MAGIC 0x54524c56
#define TR_LAYOUT 0x70110101
#define TR_H_MAGIC 0
#define TR_H_CAPACITY 1
#define TR_H_ENABLED 2
#define TR_H_LAYOUT 3
#define TR_H_HEAD 4
#define TR_H_COLD_CR 6
#define TR_H_COLD_BAUD 7
#define TR_HEADER_WORDS 16
#define TR_RECORD_WORDS 12

/* vpl011.ts NativeTail */
#define TAIL_NOTIFY 1
#define TAIL_LINE 2
#define TAIL_CORRUPT_OUT 4
#define TAIL_CORRUPT_IN 8

/* spec.ts / ring.ts */
#define REG_DR 0x000
#define REG_FR 0x018
#define REG_IMSC 0x038
#define REG_RIS 0x03c
#define REG_MIS 0x040
#define REG_ICR 0x044
#define FR_BUSY (1 << 3)
#define FR_RXFE (1 << 4)
#define FR_TXFF (1 << 5)
#define FR_RXFF (1 << 6)
#define FR_TXFE (1 << 7)
#define INT_RX (1 << 4)
#define INT_TX (1 << 5)
#define INT_RT (1 << 6)
#define INT_ERRORS (0xf << 7) /* FE, PE, BE, OE: latched until ICR (spec.ts INT_ERRORS) */
/* line-events.ts: head and tail words of the domain's line-event queue */
#define LE_HEAD 0
#define LE_TAIL 1
#define IN_SIZE 1024u
#define OUT_SIZE 2048u
#define IN_OFFSET 0x000
#define OUT_OFFSET 0x400
#define IDX_OFFSET 0xc00
#define W_IN_CONS 0
#define W_IN_PROD 1
#define W_OUT_CONS 2
#define W_OUT_PROD 3

/* machine.ts: FR spins go to the machine (it waits for the backend) at these repeat counts; its stop check runs
 * at least every POLL_PERIOD accesses. */
#define FR_SPIN_READS 16
#define POLL_PERIOD 1024
/* An MSR reaches JS (a safe point) at least this often even when nothing asked for one. */
#define MSR_PERIOD 64

typedef uint64_t (*js_read_fn)(void *uc, uint64_t offset, unsigned size, void *user);
typedef void (*js_write_fn)(void *uc, uint64_t offset, unsigned size, uint64_t value, void *user);
typedef uint32_t (*js_msr_fn)(void *uc, int reg, uint64_t cp_reg, void *user);
typedef void (*js_tail_fn)(int flags, uint32_t prod, uint32_t cons);

struct fastpath {
  int32_t *h;
  double *f;
  uint8_t *page;
  int32_t *idx;
  int32_t *doorbell;
  int32_t *line_events;
  js_read_fn js_read;
  js_write_fn js_write;
  js_msr_fn js_msr;
  js_tail_fn js_tail;
  /* `vpl011 trace`: the access-trace region (NULL: none bound) and its capacity - 1. */
  int32_t *trace;
  uint32_t trace_mask;
  /* The timer gate (timer_due): the TSC value before which the timer's next check time cannot have come. */
  struct tsc_gate {
    int usable;        /* an invariant TSC (CPUID): otherwise every check reads the clock */
    double for_check;  /* the HF_TIMER_CHECK_MONO_MS the gate was set for */
    uint64_t from, until; /* the gate holds for TSC values in [from, until) */
    uint64_t cal_tsc;  /* calibration anchor: a (TSC, CLOCK_MONOTONIC) pair; 0: none yet */
    double cal_ms;
    double per_ms;     /* TSC ticks per ms; 0 until the anchor is GATE_CAL_MS old */
    double gated;      /* decisions taken without a clock read (fp_gated: tests, measurements) */
  } gate;
};

#define SEQ __ATOMIC_SEQ_CST

/* Returns NULL if the layout word does not match (the caller falls back to the TypeScript path). */
struct fastpath *fp_new(uint8_t *hot, uint8_t *ring_page, int32_t *doorbell, int32_t *line_events) {
  int32_t *h = (int32_t *)hot;
  if (h[HS_MAGIC] != (int32_t)HOT_LAYOUT) return NULL;
  struct fastpath *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  s->h = h;
  s->f = (double *)(hot + HOT_F64_OFFSET);
  s->page = ring_page;
  s->idx = (int32_t *)(ring_page + IDX_OFFSET);
  s->doorbell = doorbell;
  s->line_events = line_events;
  s->h[HS_LAST_DOORBELL] = __atomic_load_n(doorbell, SEQ);
  s->h[HS_SAFE_DOORBELL] = s->h[HS_LAST_DOORBELL];
#if FP_HAVE_TSC
  unsigned a, b, c, d;
  s->gate.usable = __get_cpuid(0x80000007, &a, &b, &c, &d) && (d & (1u << 8)); /* invariant TSC */
#endif
  return s;
}

void fp_set_js(struct fastpath *s, js_read_fn rd, js_write_fn wr, js_msr_fn msr, js_tail_fn tail) {
  s->js_read = rd;
  s->js_write = wr;
  s->js_msr = msr;
  s->js_tail = tail;
}

static inline double fp_mono_ms_inline(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}
double fp_mono_ms(void) { return fp_mono_ms_inline(); }

void fp_free(struct fastpath *s) { free(s); }

/* Bind the access-trace region (src/device/access-trace.ts), or unbind with NULL. Returns 0 for a region whose
 * layout does not match (the caller then serves every access in JS while tracing, which still records them). */
int fp_set_trace(struct fastpath *s, uint8_t *region) {
  if (!region) {
    s->trace = NULL;
    return 1;
  }
  int32_t *t = (int32_t *)region;
  uint32_t cap = (uint32_t)t[TR_H_CAPACITY];
  if (t[TR_H_MAGIC] != (int32_t)TR_MAGIC || t[TR_H_LAYOUT] != (int32_t)TR_LAYOUT || cap < 2 || (cap & (cap - 1))) return 0;
  s->trace_mask = cap - 1;
  s->trace = t;
  return 1;
}

/* AccessTraceWriter.record for an access this path served: the state after it, from the same hot words. The slot is
 * marked invalid first and its index stored last (release), so a reader in another process never takes a torn one. */
static void trace_access(struct fastpath *s, uint32_t offset, unsigned size, int write, uint32_t value) {
  int32_t *t = s->trace;
  int32_t *h = s->h;
  uint32_t i = (uint32_t)t[TR_H_HEAD];
  uint32_t *r = (uint32_t *)(t + TR_HEADER_WORDS + (i & s->trace_mask) * TR_RECORD_WORDS);
  __atomic_store_n(&r[9], ~i, __ATOMIC_RELAXED);
  __atomic_thread_fence(__ATOMIC_RELEASE);
  unsigned wcode = size == 1 ? 0 : size == 2 ? 1 : size == 4 ? 2 : 3;
  r[0] = (offset & 0xfff) | (wcode << 12) | (write ? 1u << 14 : 0);
  r[1] = value;
  r[2] = (uint32_t)h[HS_IN_CONS];
  r[3] = (uint32_t)h[HS_IN_PROD_SEEN];
  r[4] = (uint32_t)h[HS_OUT_PROD];
  r[5] = (uint32_t)h[HS_OUT_CONS_SEEN];
  r[6] = ((uint32_t)h[HS_RIS] & 0xffff) | ((uint32_t)h[HS_IMSC] << 16);
  r[7] = (uint32_t)t[TR_H_COLD_CR];
  r[8] = (uint32_t)t[TR_H_COLD_BAUD];
  double now = fp_mono_ms_inline();
  memcpy(&r[10], &now, sizeof now);
  __atomic_store_n(&r[9], i, __ATOMIC_RELEASE);
  __atomic_store_n(&t[TR_H_HEAD], (int32_t)(i + 1), __ATOMIC_RELEASE);
}
/* Bound only while the trace is on (the vCPU thread binds and unbinds it at safe points): off costs one NULL test. */
#define TRACING(s) ((s)->trace != NULL)

/* The addresses unicorn is given (uc_mmio_map, uc_hook_add). */
uint64_t fp_mmio_read(void *uc, uint64_t offset, unsigned size, void *user);
void fp_mmio_write(void *uc, uint64_t offset, unsigned size, uint64_t value, void *user);
uint32_t fp_msr(void *uc, int reg, uint64_t cp_reg, void *user);
void *fp_mmio_read_ptr(void) { return (void *)fp_mmio_read; }
void *fp_mmio_write_ptr(void) { return (void *)fp_mmio_write; }
void *fp_msr_ptr(void) { return (void *)fp_msr; }


/* Vpl011.update(event): re-derive RIS (a data event latches every condition that holds; otherwise bits can only
 * clear), FR and the line from the levels. `in_l`/`out_l` are the rings' levels (h[HS_RING_*_LEVEL]), passed by a
 * caller that has just stored one of them: read back from memory, gcc loaded both words as one 64-bit load, which
 * cannot be forwarded from the 32-bit store just made (a store-forwarding stall on every DR write: ~half of this
 * function's time in the bare flood's profile, docs/PERF.md "Bare-metal flood"). */
static int update_levels_from(int32_t *h, int event, uint32_t in_l, uint32_t out_l) {
  h[HS_DEV_IN_LEVEL] = (int32_t)in_l;
  h[HS_DEV_OUT_LEVEL] = (int32_t)out_l;
  uint32_t rx_l = h[HS_RX_ON] ? in_l : 0;
  int32_t cond = 0;
  if ((int32_t)out_l <= h[HS_TXI_MAX_OUT]) cond |= INT_TX;
  if ((int32_t)rx_l >= h[HS_RXI_MIN_IN]) cond |= INT_RX;
  if (rx_l > 0 && h[HS_RT_MODE] != 1) cond |= INT_RT;
  int32_t ris = h[HS_RIS];
  h[HS_RIS] = (event ? cond : (ris & cond)) | (ris & INT_ERRORS);
  /* frFromLevels (vpl011.ts); never called in loopback (HS_JS_ONLY), so the levels are the rings'. */
  int32_t fr = 0;
  uint32_t depth = (uint32_t)h[HS_FIFO_DEPTH];
  if (depth == 0) {
    if (rx_l == 0) fr |= FR_RXFE;
    else if (rx_l == IN_SIZE) fr |= FR_RXFF;
    if (out_l == 0) fr |= FR_TXFE;
    else if (out_l == OUT_SIZE) fr |= FR_TXFF | FR_BUSY;
  } else {
    if (rx_l == 0) fr |= FR_RXFE;
    else if (rx_l >= depth) fr |= FR_RXFF;
    uint32_t tx_fifo = out_l > OUT_SIZE - depth ? out_l - (OUT_SIZE - depth) : 0;
    if (tx_fifo == 0) fr |= FR_TXFE;
    else fr |= FR_BUSY;
    if (tx_fifo >= depth) fr |= FR_TXFF;
  }
  h[HS_FR] = fr;
  int32_t level = (h[HS_RIS] & h[HS_IMSC]) != 0;
  if (level != h[HS_LINE]) {
    h[HS_LINE] = level;
    return TAIL_LINE;
  }
  return 0;
}
static int update_levels(int32_t *h, int event) {
  return update_levels_from(h, event, (uint32_t)h[HS_RING_IN_LEVEL], (uint32_t)h[HS_RING_OUT_LEVEL]);
}

/* The machine's checks before any vpl011 access (Machine.pollEvents): a moved doorbell means pending events to
 * dispatch first, so the access goes to JS; so does every POLL_PERIOD-th (the stop check). */
static int may_serve(int32_t *h, int32_t *doorbell) {
  if (!h[HS_ENABLED]) return 0;
  int32_t db = __atomic_load_n(doorbell, SEQ);
  if (db != h[HS_LAST_DOORBELL]) {
    h[HS_LAST_DOORBELL] = db;
    return 0;
  }
  /* One count of accesses for both paths (HS_POLLS, Machine.pollEvents): the POLL_PERIOD-th is left uncounted here
   * and sent to JS, whose count of it reaches the multiple and runs the periodic checks. */
  if ((((uint32_t)h[HS_POLLS] + 1) & (POLL_PERIOD - 1)) == 0) return 0;
  h[HS_POLLS] += 1;
  return 1;
}

/* Vpl011.writeData + ConsoleRing.putOut, for a ring that is not full by what was last seen. */
static void dr_write(struct fastpath *s, uint8_t byte) {
  int32_t *h = s->h;
  if (h[HS_TX_OFF]) s->f[HF_TX_WHILE_DISABLED] += 1; /* warned already (checked by the caller) */
  uint32_t prod = (uint32_t)h[HS_OUT_PROD];
  s->page[OUT_OFFSET + (prod & (OUT_SIZE - 1))] = byte;
  uint32_t next = prod + 1;
  h[HS_OUT_PROD] = (int32_t)next;
  __atomic_store_n(&s->idx[W_OUT_PROD], (int32_t)next, SEQ); /* data before index */
  uint32_t cons = (uint32_t)__atomic_load_n(&s->idx[W_OUT_CONS], SEQ); /* after the publish: the Dekker half */
  h[HS_OUT_CONS_SEEN] = (int32_t)cons;
  uint32_t level = next - cons;
  int flags = 0;
  if (level > OUT_SIZE) {
    flags |= TAIL_CORRUPT_OUT;
    level = OUT_SIZE;
  }
  h[HS_RING_OUT_LEVEL] = (int32_t)level;
  s->f[HF_BYTES_OUT] += 1;
  if (level == 1 || level == OUT_SIZE / 2 || level == OUT_SIZE) flags |= TAIL_NOTIFY;
  flags |= update_levels_from(h, 1, (uint32_t)h[HS_RING_IN_LEVEL], level);
  if (flags) s->js_tail(flags, next, cons);
}

/* Vpl011.readData + ConsoleRing.getIn with the receiver on. Returns -1 (nothing touched but the cached in_prod,
 * which getIn reloads anyway) when IN is empty or corrupt: the JS path then does it all, logs included. */
static int dr_read(struct fastpath *s) {
  int32_t *h = s->h;
  uint32_t cons = (uint32_t)h[HS_IN_CONS];
  uint32_t prod = (uint32_t)h[HS_IN_PROD_SEEN];
  uint32_t level = prod - cons;
  if (level == 0 || level > IN_SIZE) {
    prod = (uint32_t)__atomic_load_n(&s->idx[W_IN_PROD], SEQ); /* index before data */
    h[HS_IN_PROD_SEEN] = (int32_t)prod;
    level = prod - cons;
    if (level == 0 || level > IN_SIZE) return -1;
  }
  /* A line event waiting (line-events.ts): the JS device attaches its bits to the right byte. Loaded after in_prod
   * (the backend posts the entry before publishing the byte's in_prod), so a byte we could serve has its entry
   * visible here. */
  if (s->line_events &&
      __atomic_load_n(&s->line_events[LE_HEAD], SEQ) != __atomic_load_n(&s->line_events[LE_TAIL], SEQ))
    return -1;
  uint8_t byte = s->page[IN_OFFSET + (cons & (IN_SIZE - 1))];
  uint32_t next = cons + 1;
  h[HS_IN_CONS] = (int32_t)next;
  __atomic_store_n(&s->idx[W_IN_CONS], (int32_t)next, SEQ);
  prod = (uint32_t)__atomic_load_n(&s->idx[W_IN_PROD], SEQ);
  h[HS_IN_PROD_SEEN] = (int32_t)prod;
  level = prod - next;
  int flags = 0;
  uint32_t rep_prod = prod, rep_cons = next;
  if (level > IN_SIZE) {
    flags |= TAIL_CORRUPT_IN;
    h[HS_IN_CONS] = (int32_t)prod;
    __atomic_store_n(&s->idx[W_IN_CONS], (int32_t)prod, SEQ);
    level = 0;
  }
  h[HS_RING_IN_LEVEL] = (int32_t)level;
  s->f[HF_BYTES_IN] += 1;
  flags |= update_levels_from(h, 1, level, (uint32_t)h[HS_RING_OUT_LEVEL]);
  if ((uint32_t)h[HS_DEV_IN_LEVEL] == IN_SIZE - 1) flags |= TAIL_NOTIFY;
  if (flags) s->js_tail(flags, rep_prod, rep_cons);
  return byte;
}

static uint32_t width_mask(unsigned size) { return size >= 4 ? 0xffffffffu : (1u << (size * 8)) - 1; }

uint64_t fp_mmio_read(void *uc, uint64_t offset, unsigned size, void *user) {
  struct fastpath *s = user;
  int32_t *h = s->h;
  if (size <= 4) {
    if (offset == REG_FR) {
      if (may_serve(h, s->doorbell)) {
        int32_t v = h[HS_FR];
        int serve = 1;
        if (v != h[HS_LAST_FR]) {
          h[HS_LAST_FR] = v;
          h[HS_FR_REPEATS] = 1;
        } else if (h[HS_FR_REPEATS] + 1 >= ((v & FR_TXFF) ? 2 : FR_SPIN_READS)) {
          /* A spin: the machine (which counts in the same words) takes this read, counts it and waits for the
           * backend, exactly as if every read had been its own. */
          serve = 0;
        } else {
          h[HS_FR_REPEATS]++;
        }
        if (serve) {
          s->f[HF_NATIVE_MMIO] += 1;
          uint32_t rv = size == 1 ? (uint32_t)(v & 0xff) : (uint32_t)v;
          if (TRACING(s)) trace_access(s, REG_FR, size, 0, rv);
          return rv;
        }
      }
    } else {
      h[HS_FR_REPEATS] = 0;
      /* A timed receive timeout needs each arrival stamped in guest time by the TypeScript device: DR reads there. */
      if (offset == REG_DR && h[HS_RX_ON] && !h[HS_JS_ONLY] && !h[HS_RT_MODE] && may_serve(h, s->doorbell)) {
        int b = dr_read(s);
        if (b >= 0) {
          s->f[HF_NATIVE_MMIO] += 1;
          if (TRACING(s)) trace_access(s, REG_DR, size, 0, (uint32_t)b);
          return (uint64_t)b;
        }
      } else if ((offset == REG_RIS || offset == REG_MIS || offset == REG_IMSC) && may_serve(h, s->doorbell)) {
        /* Vpl011.read: state kept current by every event, vreg_reg32_extract at offset 0. */
        uint32_t v = offset == REG_RIS ? (uint32_t)h[HS_RIS]
                   : offset == REG_MIS ? (uint32_t)(h[HS_RIS] & h[HS_IMSC]) : (uint32_t)h[HS_IMSC];
        s->f[HF_NATIVE_MMIO] += 1;
        v &= width_mask(size);
        if (TRACING(s)) trace_access(s, (uint32_t)offset, size, 0, v);
        return v;
      }
    }
  }
  return s->js_read(uc, offset, size, NULL);
}

void fp_mmio_write(void *uc, uint64_t offset, unsigned size, uint64_t value, void *user) {
  struct fastpath *s = user;
  int32_t *h = s->h;
  h[HS_FR_REPEATS] = 0; /* any write to the page ends a spin (Machine.mmioWrite) */
  if (offset == REG_DR && size <= 4 && !h[HS_JS_ONLY] && (!h[HS_TX_OFF] || h[HS_WARNED_TX_OFF]) &&
      (uint32_t)h[HS_OUT_PROD] - (uint32_t)h[HS_OUT_CONS_SEEN] < OUT_SIZE && may_serve(h, s->doorbell)) {
    dr_write(s, (uint8_t)value);
    s->f[HF_NATIVE_MMIO] += 1;
    if (TRACING(s)) trace_access(s, REG_DR, size, 1, (uint32_t)value);
    return;
  }
  if ((offset == REG_ICR || offset == REG_IMSC) && size <= 4 && !h[HS_JS_ONLY] && may_serve(h, s->doorbell)) {
    uint32_t m = width_mask(size);
    int flags;
    if (offset == REG_ICR) {
      /* vreg_reg32_clearbits, then update(false): bits can only clear. */
      h[HS_RIS] = (int32_t)((uint32_t)h[HS_RIS] & ~((uint32_t)value & m));
      flags = update_levels(h, 0);
    } else {
      /* vreg_reg32_update, then update(true) (an IMSC write is a data event, see vpl011.ts). The receiver may
       * have started or stopped listening (RXIM/RTIM changed): the machine looks at the next safe point. A raised
       * line asks for one through the tail. */
      int32_t before = h[HS_IMSC];
      h[HS_IMSC] = (int32_t)(((uint32_t)h[HS_IMSC] & ~m) | ((uint32_t)value & m));
      flags = update_levels(h, 1);
      if ((before ^ h[HS_IMSC]) & (INT_RX | INT_RT)) h[HS_WANT_SAFE] = 1;
    }
    s->f[HF_NATIVE_MMIO] += 1;
    if (flags) s->js_tail(flags, 0, 0);
    if (TRACING(s)) trace_access(s, (uint32_t)offset, size, 1, (uint32_t)value);
    return;
  }
  s->js_write(uc, offset, size, value, NULL);
}

/*
 * Whether the timer's next check time (HF_TIMER_CHECK_MONO_MS, CLOCK_MONOTONIC ms) has come: `check <= now`, the
 * same decision as before, without a clock_gettime on most MSRs (~30 ns each; Linux's tty path makes ~1.3 MSRs per
 * console byte: 7 % of the vCPU thread in a 4 MiB cat). Once a clock read finds the check time ahead, the gate
 * converts what is left to TSC ticks, shortened by 1/64 (NTP slews CLOCK_MONOTONIC by at most 0.05 %; the rate is
 * measured over >= GATE_CAL_MS) and 20 us, and until the TSC reaches that no clock is read: the decision is never
 * later than with a clock read per MSR. Outside the gate (no invariant TSC, not yet calibrated, a check time under
 * GATE_MIN_MS ahead, a TSC that went backwards, a changed check time) every check reads the clock, as before.
 */
#define GATE_CAL_MS 100.0
#define GATE_MIN_MS 0.05
#define GATE_MAX_MS 1000.0
#define GATE_PAIR_TICKS 20000u /* a (TSC, clock) pair whose two TSC reads are further apart was interrupted */
static int timer_due(struct fastpath *s) {
  double check = s->f[HF_TIMER_CHECK_MONO_MS];
#if FP_HAVE_TSC
  struct tsc_gate *g = &s->gate;
  if (g->usable) {
    uint64_t t0 = __rdtsc();
    if (check == g->for_check && t0 >= g->from && t0 < g->until) {
      g->gated++;
      return 0;
    }
    double now = fp_mono_ms_inline();
    uint64_t t1 = __rdtsc();
    g->until = 0;
    if (check <= now) return 1;
    if (t1 >= t0 && t1 - t0 < GATE_PAIR_TICKS) {
      if (g->cal_tsc == 0 || t0 < g->cal_tsc || now < g->cal_ms) {
        g->cal_tsc = t0;
        g->cal_ms = now;
        g->per_ms = 0;
      } else if (now - g->cal_ms >= GATE_CAL_MS) {
        g->per_ms = (double)(t0 - g->cal_tsc) / (now - g->cal_ms);
      }
      double ahead = check - now;
      if (g->per_ms > 0 && ahead >= GATE_MIN_MS) {
        if (ahead > GATE_MAX_MS) ahead = GATE_MAX_MS;
        double ticks = (ahead * (1.0 - 1.0 / 64) - 0.02) * g->per_ms;
        if (ticks > 0) {
          g->for_check = check;
          g->from = t0; /* the clock was read after t0: from any TSC t in [t0, until), less than `ticks` passed */
          g->until = t0 + (uint64_t)ticks;
        }
      }
    }
    return 0;
  }
#endif
  return check <= fp_mono_ms_inline();
}

double fp_gated(struct fastpath *s) { return s->gate.gated; }

uint32_t fp_msr(void *uc, int reg, uint64_t cp_reg, void *user) {
  struct fastpath *s = user;
  int32_t *h = s->h;
  const uint32_t *cp = (const uint32_t *)(uintptr_t)cp_reg; /* { crn, crm, op0, op1, op2; u64 val } */
  s->f[HF_MSR_TOTAL] += 1;
  int pass = (cp[2] == 3 && cp[3] == 3 && cp[0] == 14 && cp[1] == 3) || h[HS_WANT_SAFE] ||
             ++h[HS_MSR_SINCE] >= MSR_PERIOD;
  if (!pass) {
    int32_t db = __atomic_load_n(s->doorbell, SEQ);
    if (db != h[HS_SAFE_DOORBELL]) pass = 1;
    else if (timer_due(s)) pass = 1;
  }
  if (!pass) return 0;
  h[HS_SAFE_DOORBELL] = __atomic_load_n(s->doorbell, SEQ);
  h[HS_WANT_SAFE] = 0;
  h[HS_MSR_SINCE] = 0;
  s->f[HF_MSR_PASSED] += 1;
  return s->js_msr(uc, reg, cp_reg, NULL);
}


/* ---- Exception entry (src/cpu/exception.ts SyncEntry.enter / readException, transliterated) ---- */

typedef int (*uc_reg_fn)(void *uc, int regid, void *value);
static uc_reg_fn uc_reg_read_p, uc_reg_write_p;
/* unicorn.ts REG ids, given by fp_exc_bind in this order. */
enum { R_PC, R_PSTATE, R_SP, R_SP_EL0, R_SP_EL1, R_ELR_EL1, R_CP_REG, R_COUNT };
static int reg_id[R_COUNT];
/* exception.ts ENV: env->exception.{syndrome, vaddress, target_el}. */
#define ENV_EXC_SYNDROME 3024
#define ENV_EXC_VADDRESS 3032
#define ENV_EXC_TARGET_EL 3040
#define PSTATE_EL1H_MASKED 0x3c5u

/* uc_arm64_cp_reg (unicorn arm64.h): crn, crm, op0, op1, op2, then val. */
struct cp_reg {
  uint32_t crn, crm, op0, op1, op2;
  uint64_t val;
};
/* unicorn.ts SYS: sr(op0, op1, crn, crm, op2). */
static const struct cp_reg SYS_VBAR_EL1 = {12, 0, 3, 0, 0, 0};
static const struct cp_reg SYS_SPSR_EL1 = {4, 0, 3, 0, 0, 0};
static const struct cp_reg SYS_ESR_EL1 = {5, 2, 3, 0, 0, 0};
static const struct cp_reg SYS_FAR_EL1 = {6, 0, 3, 0, 0, 0};

/* Bind to the loaded libunicorn (the same file koffi loaded: dlopen returns its handle). 0 on success. */
int fp_exc_bind(const char *libpath, const int32_t *ids) {
  void *h = dlopen(libpath, RTLD_NOW | RTLD_LOCAL);
  if (!h) return -1;
  uc_reg_read_p = (uc_reg_fn)(uintptr_t)dlsym(h, "uc_reg_read");
  uc_reg_write_p = (uc_reg_fn)(uintptr_t)dlsym(h, "uc_reg_write");
  if (!uc_reg_read_p || !uc_reg_write_p) return -2;
  for (int i = 0; i < R_COUNT; i++) reg_id[i] = ids[i];
  return 0;
}

static uint64_t rd(void *uc, int r, int *err) {
  uint64_t v = 0;
  *err |= uc_reg_read_p(uc, reg_id[r], &v);
  return v;
}
static void wr(void *uc, int r, uint64_t v, int *err) { *err |= uc_reg_write_p(uc, reg_id[r], &v); }
static uint64_t sys_rd(void *uc, const struct cp_reg *s, int *err) {
  struct cp_reg c = *s;
  c.val = 0;
  *err |= uc_reg_read_p(uc, reg_id[R_CP_REG], &c);
  return c.val;
}
static void sys_wr(void *uc, const struct cp_reg *s, uint64_t v, int *err) {
  struct cp_reg c = *s;
  c.val = v;
  *err |= uc_reg_write_p(uc, reg_id[R_CP_REG], &c);
}

/*
 * SyncEntry.enter(kind, syndrome, far, targetEl) with `vec_off_kind` 0 (sync), 0x80 (irq) or 0x180 (serror).
 * env != 0: first read the syndrome, fault address and target EL from env->exception (readException, inside
 * UC_HOOK_INTR), the fault address used only if `has_far`. out[]: pc (preferred return), pstate before, the vector,
 * syndrome, far (0 if none), target EL. Returns 0, or a uc_err (the registers may then be partly written, as when a
 * JS call throws).
 */
int fp_exc_enter(void *uc, const uint8_t *env, uint32_t vec_off_kind, uint32_t syndrome, int has_far, uint64_t far,
                 uint32_t target_el, uint64_t *out) {
  int err = 0;
  if (env) {
    memcpy(&syndrome, env + ENV_EXC_SYNDROME, 4);
    memcpy(&far, env + ENV_EXC_VADDRESS, 8);
    memcpy(&target_el, env + ENV_EXC_TARGET_EL, 4);
  }
  uint64_t pstate = rd(uc, R_PSTATE, &err) & 0xffffffffu;
  uint64_t pc = rd(uc, R_PC, &err);
  unsigned from_el = (unsigned)((pstate >> 2) & 3);
  int spx = (pstate & 1) != 0;
  uint64_t vbar = sys_rd(uc, &SYS_VBAR_EL1, &err);
  if (!spx) {
    wr(uc, R_SP_EL0, rd(uc, R_SP, &err), &err);
    wr(uc, R_SP, rd(uc, R_SP_EL1, &err), &err);
  }
  wr(uc, R_PSTATE, PSTATE_EL1H_MASKED, &err);
  wr(uc, R_ELR_EL1, pc, &err);
  sys_wr(uc, &SYS_SPSR_EL1, pstate, &err);
  sys_wr(uc, &SYS_ESR_EL1, syndrome, &err);
  if (has_far) sys_wr(uc, &SYS_FAR_EL1, far, &err);
  /* exception.ts vectorOffset */
  uint64_t vector = vbar + (from_el == 0 ? 0x400u : spx ? 0x200u : 0u) + vec_off_kind;
  wr(uc, R_PC, vector, &err);
  out[0] = pc;
  out[1] = pstate;
  out[2] = vector;
  out[3] = syndrome;
  out[4] = has_far ? far : 0;
  out[5] = target_el;
  return err;
}
