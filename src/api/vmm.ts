// The package's `vpl011/vmm` entry: the VMM as a library. Boot an arm64 guest (a Linux kernel with its initramfs, or
// a bare-metal program) on unicorn behind Xen's vpl011, and get its console as a pair of streams:
//
//   import { bootGuest } from 'vpl011/vmm';
//   const guest = await bootGuest({ kind: 'bare', kernel: '/path/to/hello.bin' });
//   guest.output.pipe(process.stdout);
//   guest.input.write('abc\x04');
//   console.log(await guest.exited); // { reason: 'poweroff' }
//
// Output has backpressure: a reader that stops reading holds the guest back (nothing is dropped). Input waits for
// room in the guest's ring the same way. The unicorn library is fetched into the user's cache when missing
// (~/.cache/vpl011, $VPL011_CACHE), as `vpl011 run` does; `bootGuest()` with no guest boots `vpl011 run`'s default
// Debian guest (fetched too).
import { PassThrough, Writable, type Readable } from 'node:stream';
import { resolve } from 'node:path';
import { startGuest } from '../console/guest-session.js';
import type { OverflowPolicy } from '../console/console.js';
import {
  DEFAULT_CMDLINE, DEFAULT_MEMORY_MIB, checkGuestConfig, defaultGuestConfig, loadConfig,
  type GuestConfig, type GuestKind, type MmioPolicy, type VuartProfile,
} from '../toolstack/config.js';
import { ensureGuestImages, ensureUnicorn } from '../toolstack/fetch.js';
import type { DomainExit } from '../vmm/domain-thread.js';
import type { MachineStats } from '../vmm/machine.js';

export type { DomainExit as GuestExit, MachineStats, GuestConfig, GuestKind, MmioPolicy, VuartProfile };
export { ConfigError } from '../toolstack/config.js';

/** A guest described in code (a config file's fields; kernel and ramdisk are file paths). */
export interface GuestSpec {
  kernel: string;
  /** Default 'linux'. */
  kind?: GuestKind;
  /** Default: the kernel file's name without its extension, made a valid domain name. */
  name?: string;
  ramdisk?: string;
  /** Linux only (default `console=ttyAMA0 earlycon`). */
  cmdline?: string;
  /** Default 512. */
  memoryMiB?: number;
  /** 'sbsa_uart' (default, Xen's SBSA UART) or 'pl011' (the full PL011 profile). */
  vuart?: VuartProfile;
  /** What a refused MMIO access does: 'abort' (default, an abort in the guest) or 'crash-domain'. */
  mmioPolicy?: MmioPolicy;
}

export interface BootOptions {
  /** What the console does when the output reader falls behind: 'keep' (default: hold the guest) or 'discard'. */
  policy?: OverflowPolicy;
  /** Problems the console reports (a corrupt ring, dropped output under 'discard'). Default: ignored. */
  report?: (message: string) => void;
  /** Hold input until the guest's driver listens (Linux drains what waits when it opens the port). */
  holdInputUntilListening?: boolean;
  /** Progress of a fetch into the cache (the unicorn library, the default guest's images). Default: ignored. */
  log?: (message: string) => void;
}

export interface Guest {
  readonly name: string;
  /** The guest's console output (bytes). Ends after the guest's last words once it has exited. */
  readonly output: Readable;
  /** Bytes for the guest's console input. */
  readonly input: Writable;
  /** How the guest ended (poweroff, reset, crashed with a message, or stopped). */
  readonly exited: Promise<DomainExit>;
  /** The machine's counters now (MMIO traps, interrupts, ...), answered by the running vCPU. */
  stats(): Promise<MachineStats>;
  /** Stop the guest whatever it runs; resolves with its exit. Idempotent. */
  stop(): Promise<DomainExit>;
}

/** A config from a spec: the toolstack's defaults and checks (throws ConfigError listing every problem). */
export function guestConfig(spec: GuestSpec): GuestConfig {
  const kernel = resolve(spec.kernel);
  const base = kernel.split('/').at(-1)!.replace(/\.[^.]*$/, '').replace(/[^A-Za-z0-9._-]/g, '-').replace(/^[^A-Za-z0-9]+/, '');
  const config: GuestConfig = {
    name: spec.name ?? (base || 'guest'),
    kind: spec.kind ?? 'linux',
    kernel,
    ...(spec.ramdisk !== undefined ? { ramdisk: resolve(spec.ramdisk) } : {}),
    cmdline: spec.cmdline ?? DEFAULT_CMDLINE,
    memoryMiB: spec.memoryMiB ?? DEFAULT_MEMORY_MIB,
    vcpus: 1,
    vuart: spec.vuart ?? 'sbsa_uart',
    mmioPolicy: spec.mmioPolicy ?? 'abort',
  };
  checkGuestConfig(config);
  return config;
}

/**
 * Boot a guest: a spec, a config file's path, or nothing for `vpl011 run`'s default Debian guest. Resolves once the
 * vCPU runs and the console is connected.
 */
export async function bootGuest(guest?: GuestSpec | string, opts: BootOptions = {}): Promise<Guest> {
  const log = opts.log ?? (() => {});
  const config =
    typeof guest === 'string' ? loadConfig(guest) : guest !== undefined ? guestConfig(guest) : defaultGuestConfig(await ensureGuestImages({ log }));
  await ensureUnicorn({ log });
  const running = await startGuest(config, {
    ...(opts.policy ? { policy: opts.policy } : {}),
    ...(opts.report ? { report: opts.report } : {}),
    ...(opts.holdInputUntilListening ? { holdInputUntilListening: true } : {}),
  });
  const { console } = running;
  const output = new PassThrough();
  console.addSink(output, { label: 'library output' });
  // Input: queued in the console; a full queue holds the writer's callback until the ring has room again.
  let waiting: (() => void) | undefined;
  console.onInputSpace = () => {
    const w = waiting;
    waiting = undefined;
    w?.();
  };
  const input = new Writable({
    write(chunk: Buffer, _enc, done) {
      if (console.queueInput(chunk)) done();
      else waiting = done;
    },
  });
  void running.exited.then(() => {
    output.end();
    waiting?.(); // the guest is gone: a writer waiting for room is released (its bytes go nowhere)
    input.destroy();
  });
  return {
    name: running.name,
    output,
    input,
    exited: running.exited,
    stats: () => running.stats(),
    async stop() {
      await running.stop();
      return running.exited;
    },
  };
}
