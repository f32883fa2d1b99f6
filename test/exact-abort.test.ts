// Issue 7 §3: exact aborts under mmio_policy = "abort". guests/bare/abort-probe.S installs a vector table, makes one
// bad access and prints the ESR/FAR/ELR its synchronous vector saw, and the faulting instruction's address (AT).
// Before: an access where nothing is mapped ended the domain (UC_ERR_WRITE_UNMAPPED / READ_UNMAPPED), and a refused
// UART access was aborted at the next safe point (ELR later than the instruction, ISV = 0).
import { test } from './lib/bounded.js';
import assert from 'node:assert/strict';
import { vpl011Process } from './lib/console-process.js';
import { buildBareGuestFile } from '../src/vmm/bare-guests.js';

async function probe(mode: number, input?: string, env: NodeJS.ProcessEnv = {}): Promise<{ esr: number; far: bigint; elr: bigint; at: bigint; out: string }> {
  const p = vpl011Process(['run', '--bare', '--kernel', buildBareGuestFile('abort-probe', { defines: { MODE: mode } }), '--timeout', '20'], env);
  try {
    if (input !== undefined) p.type(input);
    const e = await p.exited;
    assert.equal(e.code, 0, `exit ${e.code}: ${p.stderr}`);
    const m = /ESR=([0-9a-f]{16}) FAR=([0-9a-f]{16}) ELR=([0-9a-f]{16}) AT=([0-9a-f]{16})[\n ]/.exec(p.out);
    assert.ok(m, `no abort report: ${JSON.stringify(p.out)} ${p.stderr}`);
    return { esr: Number.parseInt(m[1]!, 16), far: BigInt('0x' + m[2]), elr: BigInt('0x' + m[3]), at: BigInt('0x' + m[4]), out: p.out };
  } finally {
    await p.kill();
  }
}

const EC = (esr: number) => esr >>> 26;
const ISV = 1 << 24;
const SAS = (esr: number) => (esr >>> 22) & 3;
const SRT = (esr: number) => (esr >>> 16) & 31;
const SF = 1 << 15;
const WNR = 1 << 6;
const DFSC = (esr: number) => esr & 0x3f;

test('a 32-bit store to 0x09000000 (nothing mapped) is a data abort at that instruction: EC 0x25, ISV, SAS 2, SRT 1, WnR, FAR', { timeout: 60_000 }, async () => {
  const r = await probe(0);
  assert.equal(EC(r.esr), 0x25);
  assert.ok(r.esr & ISV && r.esr & WNR && r.esr & (1 << 25), `ESR 0x${r.esr.toString(16)}`);
  assert.equal(SAS(r.esr), 2);
  assert.equal(SRT(r.esr), 1);
  assert.equal(DFSC(r.esr), 0x10);
  assert.equal(r.far, 0x09000000n);
  assert.equal(r.elr, r.at, 'ELR is the faulting instruction');
});

test('a 64-bit load from 0x09000000 is one abort at that instruction (one width-8 access, not two halves): SAS 3, SF, not WnR', { timeout: 60_000 }, async () => {
  const r = await probe(1);
  assert.equal(EC(r.esr), 0x25);
  assert.ok(r.esr & ISV && r.esr & SF && !(r.esr & WNR), `ESR 0x${r.esr.toString(16)}`);
  assert.equal(SAS(r.esr), 3);
  assert.equal(SRT(r.esr), 3);
  assert.equal(r.far, 0x09000000n);
  assert.equal(r.elr, r.at);
});

test('a 64-bit load at UART+0xffc straddling the page aborts at that instruction, FAR the unmapped half', { timeout: 60_000 }, async () => {
  const r = await probe(2);
  assert.equal(EC(r.esr), 0x25);
  assert.equal(r.far, 0x22001000n);
  assert.equal(r.elr, r.at);
});

test('a refused UART access (a read of the write-only UARTICR) aborts at that instruction, with its ISS (SAS 2, SRT 3)', { timeout: 60_000 }, async () => {
  const r = await probe(3);
  assert.equal(EC(r.esr), 0x25);
  assert.ok(r.esr & ISV && !(r.esr & WNR), `ESR 0x${r.esr.toString(16)}`);
  assert.equal(SAS(r.esr), 2);
  assert.equal(SRT(r.esr), 3);
  assert.equal(DFSC(r.esr), 0x10);
  assert.equal(r.far, 0x22000044n);
  assert.equal(r.elr, r.at, 'ELR is the faulting instruction, not the next safe point');
});

// Before: unicorn split a 64-bit UART access into two 32-bit ones and the device served the low half (a byte in the
// ring, or an input byte consumed) before the high half was refused; the abort came after the half-executed access.
// Both vCPU paths: the native fast path hands any width but 1..4 to the same JS callback.
for (const [path, env] of [['native path when built', {}], ['TypeScript path', { VPL011_NATIVE: '0' }]] as const) {
test(`a 64-bit store to UARTDR is refused whole at that instruction (no byte of it reaches the ring), and the guest goes on (${path})`, { timeout: 60_000 }, async () => {
  const r = await probe(4, undefined, env);
  assert.equal(EC(r.esr), 0x25);
  assert.ok(r.esr & ISV && r.esr & WNR && r.esr & SF, `ESR 0x${r.esr.toString(16)}`);
  assert.equal(SAS(r.esr), 3);
  assert.equal(SRT(r.esr), 1);
  assert.equal(DFSC(r.esr), 0x10);
  assert.equal(r.far, 0x22000000n);
  assert.equal(r.elr, r.at, 'ELR is the 64-bit store');
  assert.ok(r.out.startsWith('ESR='), `nothing before the report (the low half "!" must not be in the ring): ${JSON.stringify(r.out)}`);
  assert.match(r.out, / CONT\n$/, 'the guest went on after the abort');
  assert.equal(r.out.split('!').length, 1, `no "!" anywhere: ${JSON.stringify(r.out)}`);
});

test(`a 64-bit load from UARTDR is refused whole at that instruction: no input byte consumed, its register unchanged (${path})`, { timeout: 60_000 }, async () => {
  const r = await probe(5, 'Q', env);
  assert.equal(EC(r.esr), 0x25);
  assert.ok(r.esr & ISV && r.esr & SF && !(r.esr & WNR), `ESR 0x${r.esr.toString(16)}`);
  assert.equal(SAS(r.esr), 3);
  assert.equal(SRT(r.esr), 3);
  assert.equal(r.far, 0x22000000n);
  assert.equal(r.elr, r.at, 'ELR is the 64-bit load');
  const m = / X3=([0-9a-f]{16}) RX=([0-9a-f]{16}) CONT\n$/.exec(r.out);
  assert.ok(m, `guest went on and reported: ${JSON.stringify(r.out)}`);
  assert.equal(m[1], '1122334455667788', 'the refused load left x3 as it was');
  assert.equal(Number.parseInt(m[2]!, 16) & 0xff, 0x51, 'the input byte "Q" was still there for the next (32-bit) read');
});
}

test('an exception the guest cannot take (no vector table) ends the domain naming that exception, not the vector fetch', { timeout: 60_000 }, async () => {
  const p = vpl011Process(['run', '--bare', '--kernel', buildBareGuestFile('no-vector'), '--timeout', '20']);
  try {
    const e = await p.exited;
    assert.equal(e.code, 1, p.stderr);
    assert.match(p.stderr, /domain crashed: d\d+: undefined instruction \(ESR 0x2000000\) at pc 0x40000004 could not be taken: its vector at 0x200 failed/);
  } finally {
    await p.kill();
  }
});

// MODE 2, 5 and 6 (aborts the VMM injects itself: an unmapped address, a refused UART register) looped forever
// before: the checks ran only for exceptions unicorn reported.
for (const [mode, what, re] of [
  [0, 'an undefined instruction', /exception loop: undefined instruction \(ESR 0x2000000\) at pc 0x4000000c; its vector at 0x40000a00 raises it again/],
  [1, 'an SVC', /exception loop: SVC \(ESR 0x56000000\) at pc 0x4000000c; its vector at 0x40000a00 raises it again/],
  [2, 'a store to an unmapped address', /exception loop: data abort \(ESR 0x97810050\) at pc 0x4000001c; its vector at 0x40000a00 raises it again/],
  [3, 'an alignment fault (unaligned LDXR)', /exception loop: data abort \(ESR 0x96000021\) at pc 0x4000001c; its vector at 0x40000a00 raises it again/],
  [4, 'a BRK', /exception loop: BRK \(ESR 0xf2000000\) at pc 0x4000001c; its vector at 0x40000a00 raises it again/],
  [5, 'a refused UART read (UARTICR)', /exception loop: data abort \(ESR 0x\w+\) at pc 0x4000001c; its vector at 0x40000a00 raises it again/],
  [6, 'an injected abort and returns to the same store', /exception loop: 1000 identical aborts \(ESR 0x97810050, FAR 0x9000000\) at pc 0x4000001c/],
  [7, 'an alignment fault and returns to the same LDXR', /exception loop: 1000 identical aborts \(ESR 0x96000021, FAR 0x40010003\) at pc 0x4000001c/],
] as const) {
  test(`a vector that raises ${what} again loops: the domain ends naming the first one (every class, not only aborts)`, { timeout: 60_000 }, async () => {
    const p = vpl011Process(['run', '--bare', '--kernel', buildBareGuestFile('vector-loop', { defines: { MODE: mode } }), '--timeout', '20']);
    try {
      const e = await p.exited;
      assert.equal(e.code, 1, p.stderr);
      assert.match(p.stderr, re);
    } finally {
      await p.kill();
    }
  });
}
