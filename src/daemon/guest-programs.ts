// Test guests that run in a domain host's vCPU thread in place of a CPU: small programs that drive the vpl011
// through the domain's MMIO bus exactly as a bare-metal polling driver does (read FR, wait while TXFF / RXFE, write
// or read DR), and idle like WFI (sleep on the domain's event-channel doorbell, dispatch events on wakeup). They
// exercise the real device, ring, event channels and daemon; only the instruction decoder is missing, which keeps
// the daemon's tests fast and independent of the CPU emulator. (The unicorn bare-metal guests in guests/bare/ run
// the same paths through the VMM.)
import { createHash } from 'node:crypto';
import { GUEST_PL011_BASE, VUART_PFN_OFFSET, XEN_PAGE_SIZE } from '../xen/arch-arm.js';
import type { MmioAccess, Domain } from '../xen/domain.js';

const DR = GUEST_PL011_BASE + 0x00;
const FR = GUEST_PL011_BASE + 0x18;
const FR_TXFF = 1 << 5;
const FR_RXFE = 1 << 4;

export type ProgramName = 'echo' | 'stream' | 'checksum' | 'scribble' | 'poweroff';
export const PROGRAMS: readonly ProgramName[] = ['echo', 'stream', 'checksum', 'scribble', 'poweroff'];

export interface ProgramArgs {
  /** stream: bytes to write; checksum: bytes to read; scribble: scribbles to do. */
  count?: number;
  seed?: number;
}

/** Validate program arguments from a user (the control socket); returns an error naming the field, or undefined. */
export function checkProgram(program: unknown, args: unknown): string | undefined {
  if (typeof program !== 'string' || !PROGRAMS.includes(program as ProgramName)) {
    return `program: must be one of ${PROGRAMS.join(', ')}`;
  }
  if (args === undefined) return undefined;
  if (typeof args !== 'object' || args === null || Array.isArray(args)) return 'args: must be an object';
  for (const [k, v] of Object.entries(args)) {
    if (k !== 'count' && k !== 'seed') return `args.${k}: unknown argument`;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0 || v > 2 ** 40) return `args.${k}: must be a whole number 0..2^40`;
  }
  return undefined;
}

/** The stream guest's output: line i is "<name> <i, 10 digits>\n", cut at `count` bytes. Tests regenerate it. */
export function streamBytes(name: string, count: number): Buffer {
  const out = Buffer.alloc(count);
  let off = 0;
  for (let i = 0; off < count; i++) off += out.write(`${name} ${String(i).padStart(10, '0')}\n`, off, 'latin1');
  return out;
}

export interface GuestCpu {
  domain: Domain;
  /** WFI: dispatch pending events, then sleep on the doorbell (woken by an event or a stop). */
  idle(): void;
  stopping(): boolean;
  /** The 4 magic pages (guest memory the program may scribble on). */
  magic: Uint8Array;
}

export type ProgramExit = { reason: 'poweroff' | 'stopped' | 'crashed'; message?: string };

class Halt extends Error {}

function mmio(cpu: GuestCpu, a: MmioAccess): number {
  const r = cpu.domain.handleMmio(a);
  if (r === 'crashed') throw new Halt(cpu.domain.crashReason ?? 'crashed');
  if (r === 'inject-abort') throw new Halt(`data abort at 0x${a.addr.toString(16)}`);
  return a.value;
}

function makeIo(cpu: GuestCpu) {
  const frA: MmioAccess = { addr: FR, width: 4, write: false, value: 0 };
  const drW: MmioAccess = { addr: DR, width: 4, write: true, value: 0 };
  const drR: MmioAccess = { addr: DR, width: 4, write: false, value: 0 };
  const check = () => {
    if (cpu.stopping()) throw new Halt('stopped');
  };
  const putc = (c: number) => {
    while (mmio(cpu, frA) & FR_TXFF) {
      check();
      cpu.idle();
    }
    drW.value = c;
    mmio(cpu, drW);
  };
  const puts = (s: string | Uint8Array) => {
    const b = typeof s === 'string' ? Buffer.from(s) : s;
    for (let i = 0; i < b.length; i++) putc(b[i]!);
  };
  const getc = (): number => {
    while (mmio(cpu, frA) & FR_RXFE) {
      check();
      cpu.idle();
    }
    return mmio(cpu, drR) & 0xff;
  };
  return { putc, puts, getc, check };
}

export function runProgram(cpu: GuestCpu, program: ProgramName, args: ProgramArgs): ProgramExit {
  const name = cpu.domain.name;
  const io = makeIo(cpu);
  try {
    switch (program) {
      case 'echo': {
        // Line-oriented echo: every line typed comes back tagged with the domain's name.
        io.puts(`${name} ready\n`);
        let line: number[] = [];
        for (;;) {
          const c = io.getc();
          if (c === 0x0d || c === 0x0a) {
            io.puts(`${name}: ${Buffer.from(line).toString('latin1')}\n`);
            line = [];
          } else if (line.length < 4096) line.push(c);
        }
      }
      case 'stream': {
        let left = args.count ?? 1 << 20;
        for (let i = 0; left > 0; i++) {
          const line = Buffer.from(`${name} ${String(i).padStart(10, '0')}\n`);
          const b = line.length <= left ? line : line.subarray(0, left);
          io.puts(b);
          left -= b.length;
        }
        for (;;) {
          io.check();
          cpu.idle();
        }
      }
      case 'checksum': {
        const n = args.count ?? 1 << 20;
        io.puts(`${name} reading ${n}\n`);
        const h = createHash('sha256');
        const buf = new Uint8Array(4096);
        let got = 0;
        while (got < n) {
          let k = 0;
          while (k < buf.length && got + k < n) buf[k++] = io.getc();
          h.update(buf.subarray(0, k));
          got += k;
        }
        io.puts(`sha256 ${h.digest('hex')}\n`);
        for (;;) {
          io.check();
          cpu.idle();
        }
      }
      case 'scribble': {
        // Writes random values over the indices of its own ring page (0x39003c00..), as a buggy or hostile guest
        // can, interleaved with output.
        const page = new DataView(cpu.magic.buffer, cpu.magic.byteOffset + VUART_PFN_OFFSET * XEN_PAGE_SIZE, XEN_PAGE_SIZE);
        let x = (args.seed ?? 12345) >>> 0 || 1;
        const rnd = () => {
          x ^= x << 13;
          x >>>= 0;
          x ^= x >>> 17;
          x ^= x << 5;
          return (x >>>= 0);
        };
        const count = args.count ?? 100;
        for (let i = 0; i < count; i++) {
          io.puts(`${name} scribble ${i}\n`);
          page.setUint32(0xc00 + 4 * (rnd() & 3), rnd(), true);
        }
        io.puts(`${name} done\n`);
        for (;;) {
          io.check();
          cpu.idle();
        }
      }
      case 'poweroff':
        io.puts(`${name} powering off\n`);
        return { reason: 'poweroff' };
    }
  } catch (e) {
    if (e instanceof Halt) {
      return e.message === 'stopped' ? { reason: 'stopped' } : { reason: 'crashed', message: e.message };
    }
    return { reason: 'crashed', message: (e as Error).message };
  }
  return { reason: 'crashed', message: 'unknown program' };
}
