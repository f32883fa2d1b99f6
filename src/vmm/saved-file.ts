// Saved-domain files on disk (docs/SAVE.md): writing one (atomically, private to the user) and reading one back
// with every check done before anything is built: the container and its sections (src/vmm/saved-domain.ts), then
// the guest config with the config file's own rules, and the two against each other (RAM size, vuart profile).
// Every refusal is a SavedFileError with one line naming the file.
import { closeSync, constants, fsyncSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { FileReadError, readRegularFile } from '../util/bounded-read.js';
import { printableLine } from '../util/quote.js';
import { SaveFormatError } from './save-format.js';
import { decodeSavedDomain, encodeSavedDomain, type SavedDomain } from './saved-domain.js';
import type { MachineState } from './machine-state.js';
import { cmdlineProblem, memoryProblem, nameProblem, oneOfProblem, type GuestConfig } from '../toolstack/config.js';
import { GUEST_RAM0_SIZE } from '../toolstack/guest-map.js';
import { Vpl011Error, errorMessage } from '../util/errors.js';

/** A saved file is at most the largest guest's RAM (incompressible) plus its small sections. */
export const SAVED_FILE_CAP = GUEST_RAM0_SIZE + 64 * 1024 * 1024;

/** A saved file that cannot be read, used or written (one line naming the file). */
export class SavedFileError extends Vpl011Error<'EINVAL' | 'EIO'> {
  constructor(file: string, reason: string, code: 'EINVAL' | 'EIO' = 'EINVAL') {
    super(code, `${printableLine(file)}: ${reason}`);
  }
}

let producerCache: string | undefined;
/** "vpl011 <package version>": the producing version written in every header. */
export function producer(): string {
  if (producerCache === undefined) {
    let v = 'unknown';
    try {
      const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
      if (typeof pkg.version === 'string') v = pkg.version;
    } catch {
      /* an installed copy without its package.json: the format version still identifies the file */
    }
    producerCache = `vpl011 ${v}`;
  }
  return producerCache;
}

export interface LoadedSave {
  saved: SavedDomain;
  config: GuestConfig;
  /** The machine's part, as Machine's `restore` option takes it. */
  machine: MachineState;
}

/** The config section as a GuestConfig, checked with the config file's rules (its kernel need not exist any more). */
function configOf(file: string, d: SavedDomain): GuestConfig {
  const c = d.config as Partial<GuestConfig>;
  const str = (v: unknown) => typeof v === 'string';
  if (!str(c.name) || !str(c.kind) || !str(c.kernel) || !str(c.cmdline) || typeof c.memoryMiB !== 'number' || !str(c.vuart) || !str(c.mmioPolicy)) {
    throw new SavedFileError(file, 'corrupt: config: a field is missing or of the wrong type');
  }
  const config: GuestConfig = {
    name: c.name!, kind: c.kind!, kernel: c.kernel!, cmdline: c.cmdline!, memoryMiB: c.memoryMiB, vcpus: 1, vuart: c.vuart!, mmioPolicy: c.mmioPolicy!,
    ...(typeof c.ramdisk === 'string' ? { ramdisk: c.ramdisk } : {}),
  };
  // The config file's rules, field by field; the kernel and ramdisk were loaded into the saved RAM, so the files
  // themselves need not exist any more (a moved or deleted image does not stop a restore).
  const problems: [string, string | undefined][] = [
    ['name', nameProblem(config.name)],
    ['kind', oneOfProblem(config.kind, ['linux', 'bare'])],
    ['cmdline', cmdlineProblem(config.cmdline)],
    ['memory', memoryProblem(config.memoryMiB)],
    ['vuart', oneOfProblem(config.vuart, ['sbsa_uart', 'pl011'])],
    ['mmio_policy', oneOfProblem(config.mmioPolicy, ['abort', 'crash-domain'])],
  ];
  const bad = problems.find(([, p]) => p !== undefined);
  if (bad) throw new SavedFileError(file, `corrupt: config: ${bad[0]}: ${bad[1]!}`);
  if (d.ram.size !== config.memoryMiB * 1024 * 1024) throw new SavedFileError(file, `corrupt: ${d.ram.size} bytes of RAM saved for memory = ${config.memoryMiB} MiB`);
  if ((config.vuart === 'pl011' ? 'pl011' : 'sbsa') !== d.vuart.profile) throw new SavedFileError(file, `corrupt: a ${d.vuart.profile} vuart saved for vuart = "${config.vuart}"`);
  return config;
}

/** Decode and check a saved domain already in memory (e.g. received from a domain host). */
export function checkSaved(file: string, bytes: Uint8Array): LoadedSave {
  let saved: SavedDomain;
  try {
    saved = decodeSavedDomain(bytes);
  } catch (e) {
    if (e instanceof SaveFormatError) throw new SavedFileError(file, e.message);
    throw e;
  }
  const config = configOf(file, saved);
  const { header: _h, config: _c, ...machine } = saved;
  return { saved, config, machine };
}

/** Read and check a saved domain file; throws SavedFileError (one line) for anything unusable. */
export function readSavedFile(file: string): LoadedSave {
  let bytes: Buffer;
  try {
    bytes = readRegularFile(file, SAVED_FILE_CAP);
  } catch (e) {
    if (e instanceof FileReadError) throw new SavedFileError(file, e.message.replace(/^.*?: /, ''));
    throw e;
  }
  return checkSaved(file, bytes);
}

/** The file's bytes for a machine state captured from a domain built from `config`. */
export function encodeSaved(state: MachineState, config: GuestConfig, name: string): Buffer {
  const { source: _s, ...cfg } = config;
  return encodeSavedDomain({ header: { producer: producer(), savedAt: new Date().toISOString(), name }, config: cfg, ...state });
}

/**
 * Write `bytes` to `file` atomically: a private temporary file next to it (mode 0600: guest memory can hold
 * secrets), fsync, rename. A failure leaves no partial file and throws SavedFileError.
 */
export function writeSavedFile(file: string, bytes: Uint8Array): void {
  const tmp = join(dirname(file), `.${basename(file)}.${process.pid}.tmp`);
  let fd: number | undefined;
  try {
    fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
    for (let off = 0; off < bytes.length; ) off += writeSync(fd, bytes, off, Math.min(bytes.length - off, 1 << 24));
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(tmp, file);
  } catch (e) {
    if (fd !== undefined) closeSync(fd);
    rmSync(tmp, { force: true });
    throw new SavedFileError(file, `cannot write: ${(e as NodeJS.ErrnoException).code ?? errorMessage(e)}`);
  }
}
