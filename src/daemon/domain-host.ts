// The domain host: one process per domain started by `vpl011 up` (spawned detached by the daemon), so that domains
// outlive the daemon (issue #4 item 3). It owns the domain's shared memory (the 4 magic pages, mapped into the
// guest), runs the vCPU in a worker thread, publishes its record, and on destroy (SIGTERM) or guest exit unwinds:
// stop the vCPU, domain_vpl011_deinit (in the vCPU thread), record the final state, wait for the daemon to drain
// the ring (it removes the record), then unlink the shm object and exit.
import { existsSync, readFileSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { FutexWaker } from '../host/futex.js';
import { openSharedMapping, type SharedMapping } from '../host/shm.js';
import { EventChannels } from '../xen/evtchn.js';
import { NR_MAGIC_PAGES, XEN_PAGE_SIZE } from '../xen/arch-arm.js';
import type { GuestConfig } from '../toolstack/config.js';
import { checkProgram, type ProgramArgs, type ProgramExit, type ProgramName } from './guest-programs.js';
import type { GuestWorkerData, GuestWorkerMessage } from './guest-worker.js';
import { runPaths } from './paths.js';
import { INSTANCE_RE, NAME_RE, readRecord, recordPath, removeRecord, writeRecord, type DomainRecord } from './records.js';
import { rmSync } from 'node:fs';
import { join } from 'node:path';

export interface DomainSpec {
  domid: number;
  name: string;
  instance: string;
  runDir: string;
  evtchnShm: string;
  evtchnSize: number;
  magicShm: string;
  guest: { kind: 'program'; program: ProgramName; args: ProgramArgs } | { kind: 'config'; config?: GuestConfig };
  tcp?: { host: string; port: number };
}

/** How long a finished domain waits for a daemon to drain its last output before giving up. */
const DRAIN_WAIT_MS = 60_000;

function validateSpec(v: unknown): DomainSpec {
  const s = v as DomainSpec;
  const bad = (f: string) => new Error(`domain spec: ${f}: invalid`);
  if (typeof s !== 'object' || s === null) throw bad('spec');
  if (!Number.isInteger(s.domid) || s.domid < 1) throw bad('domid');
  if (typeof s.name !== 'string' || !NAME_RE.test(s.name)) throw bad('name');
  if (typeof s.instance !== 'string' || !INSTANCE_RE.test(s.instance)) throw bad('instance');
  if (typeof s.runDir !== 'string') throw bad('runDir');
  if (typeof s.evtchnShm !== 'string' || typeof s.magicShm !== 'string') throw bad('shm names');
  if (!Number.isInteger(s.evtchnSize) || s.evtchnSize <= 0) throw bad('evtchnSize');
  if (typeof s.guest !== 'object' || s.guest === null) throw bad('guest');
  if (s.guest.kind === 'program') {
    const e = checkProgram(s.guest.program, s.guest.args);
    if (e) throw new Error(`domain spec: guest.${e}`);
  } else if (s.guest.kind !== 'config') throw bad('guest.kind');
  return s;
}

export async function runDomainHost(specPath: string): Promise<number> {
  const spec = validateSpec(JSON.parse(readFileSync(specPath, 'utf8')));
  const paths = runPaths(spec.runDir);
  const say = (m: string) => process.stderr.write(`vpl011 domain-host d${spec.domid} (${spec.name}): ${m}\n`);

  const evtchnMap = openSharedMapping(spec.evtchnShm, { size: spec.evtchnSize });
  const evtchn = EventChannels.attach(evtchnMap.buffer, new FutexWaker(evtchnMap));
  const magicSize = NR_MAGIC_PAGES * XEN_PAGE_SIZE;
  const magic: SharedMapping = openSharedMapping(spec.magicShm, { create: true, exclusive: true, size: magicSize });

  const rec: DomainRecord = {
    domid: spec.domid,
    name: spec.name,
    instance: spec.instance,
    pid: process.pid,
    state: 'starting',
    magicShm: spec.magicShm,
    vuartPort: 0,
    summary: spec.guest.kind === 'program' ? `program ${spec.guest.program}` : `${spec.guest.config?.kind ?? 'linux'} ${spec.guest.config?.kernel ?? '(default guest)'}`,
    ...(spec.tcp ? { tcp: spec.tcp } : {}),
    startedAt: new Date().toISOString(),
  };
  writeRecord(paths.domainsDir, rec);

  const control = new SharedArrayBuffer(4);
  let exitInfo: ProgramExit;
  if (spec.guest.kind === 'program') {
    const data: GuestWorkerData = {
      domid: spec.domid,
      name: spec.name,
      evtchnAddress: evtchnMap.address,
      evtchnSize: evtchnMap.size,
      magicAddress: magic.address,
      program: spec.guest.program,
      args: spec.guest.args,
      control,
    };
    const worker = new Worker(new URL('./guest-worker.js', import.meta.url), { workerData: data });
    const stop = () => {
      Atomics.store(new Int32Array(control), 0, 1);
      evtchn.kick(spec.domid); // wake the vCPU from its WFI sleep
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
    process.on('SIGHUP', () => {});
    exitInfo = await new Promise<ProgramExit>((resolve) => {
      worker.on('message', (m: GuestWorkerMessage) => {
        if (m.type === 'port') {
          rec.vuartPort = m.port;
          rec.state = 'running';
          writeRecord(paths.domainsDir, rec);
        } else if (m.type === 'log') say(m.message);
        else if (m.type === 'exit') resolve(m.exit);
      });
      worker.on('error', (e) => resolve({ reason: 'crashed', message: `vCPU thread: ${e.message}` }));
      worker.on('exit', () => resolve({ reason: 'crashed', message: 'vCPU thread exited' }));
    });
    await worker.terminate();
  } else {
    // Real guests run through the VMM (src/vmm/) once it can place the magic pages and the event-channel table in
    // these mappings; until then this path reports why it cannot run.
    exitInfo = { reason: 'crashed', message: 'running a guest image under the daemon needs the VMM shared-memory option (not available yet)' };
  }

  rec.state = exitInfo.reason === 'crashed' ? 'crashed' : 'shutdown';
  rec.reason = exitInfo.reason;
  if (exitInfo.message) rec.message = exitInfo.message;
  if (existsSync(recordPath(paths.domainsDir, rec.domid))) writeRecord(paths.domainsDir, rec);
  say(`${rec.state}${exitInfo.message ? `: ${exitInfo.message}` : ''}`);

  // Let the daemon take the guest's last words out of the ring; it removes the record when done.
  const deadline = Date.now() + DRAIN_WAIT_MS;
  while (readRecord(paths.domainsDir, rec.domid)?.instance === rec.instance && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 25));
  }
  if (readRecord(paths.domainsDir, rec.domid)?.instance === rec.instance) {
    say('no daemon drained the console; giving up');
    removeRecord(paths.domainsDir, rec.domid);
  }
  rmSync(join(paths.domainsDir, `${rec.domid}.spec.json`), { force: true });
  if (exitInfo.reason !== 'crashed') rmSync(join(paths.domainsDir, `${rec.domid}.stderr`), { force: true });
  magic.unlink();
  magic.close();
  evtchnMap.close();
  return exitInfo.reason === 'crashed' ? 1 : 0;
}
