// Issue 7 §3: exact aborts under mmio_policy = "abort". guests/bare/abort-probe.S installs a vector table, makes one
// bad access and prints the ESR/FAR/ELR its synchronous vector saw, and the faulting instruction's address (AT).
// Before: an access where nothing is mapped ended the domain (UC_ERR_WRITE_UNMAPPED / READ_UNMAPPED), and a refused
// UART access was aborted at the next safe point (ELR later than the instruction, ISV = 0).
import { test } from './lib/bounded.js';
import assert from 'node:assert/strict';
import { vpl011Process } from './lib/console-process.js';
import { buildBareGuestFile } from '../src/vmm/bare-guests.js';

async function probe(mode: number): Promise<{ esr: number; far: bigint; elr: bigint; at: bigint }> {
  const p = vpl011Process(['run', '--bare', '--kernel', buildBareGuestFile('abort-probe', { defines: { MODE: mode } }), '--timeout', '20']);
  try {
    const e = await p.exited;
    assert.equal(e.code, 0, `exit ${e.code}: ${p.stderr}`);
    const m = /ESR=([0-9a-f]{16}) FAR=([0-9a-f]{16}) ELR=([0-9a-f]{16}) AT=([0-9a-f]{16})\n/.exec(p.out);
    assert.ok(m, `no abort report: ${JSON.stringify(p.out)} ${p.stderr}`);
    return { esr: Number.parseInt(m[1]!, 16), far: BigInt('0x' + m[2]), elr: BigInt('0x' + m[3]), at: BigInt('0x' + m[4]) };
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

test('a 64-bit load from 0x09000000 is one abort at that instruction (unicorn splits it in two; the 2nd half is dropped): SAS 3, SF, not WnR', { timeout: 60_000 }, async () => {
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

for (const [mode, what, re] of [
  [0, 'an undefined instruction', /exception loop: undefined instruction \(ESR 0x2000000\) at pc 0x4000000c; its vector at 0x40000a00 raises it again/],
  [1, 'an SVC', /exception loop: SVC \(ESR 0x56000000\) at pc 0x4000000c; its vector at 0x40000a00 raises it again/],
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
