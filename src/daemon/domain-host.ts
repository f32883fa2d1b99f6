// The domain host: one process per domain started by `vpl011 up` (spawned detached by the daemon), so that domains
// outlive the daemon (issue #4 item 3). It owns the domain's shared memory (the 4 magic pages, a cross-process shm
// object the daemon maps too), builds the guest with the toolstack, runs it on the VMM (src/vmm/worker.ts: unicorn,
// the vpl011 traps, the vGIC) in a worker thread over those pages and the hypervisor-wide event-channel table,
// publishes its record, and on destroy (SIGTERM) or guest exit unwinds: stop the vCPU, tear the vuart down
// (domain_vpl011_deinit in the worker, which frees the guest's event channel), record the final state, wait for the
// daemon to drain the ring (it removes the record), then unlink the shm object and exit.
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { FutexWaker } from '../host/futex.js';
import { openSharedMapping, type SharedMapping } from '../host/shm.js';
import { EventChannels } from '../xen/evtchn.js';
import { NR_MAGIC_PAGES, XEN_PAGE_SIZE } from '../xen/arch-arm.js';
import { buildGuest } from '../toolstack/build.js';
import { inputWaitsForListener, type GuestConfig } from '../toolstack/config.js';
import { startDomainWorker, type DomainExit, type DomainWorker } from '../vmm/domain-thread.js';
import { restoreImage } from '../vmm/machine-state.js';
import { readSavedFile } from '../vmm/saved-file.js';
import { performSave, takeSaveOrder } from './host-save.js';
import { runPaths } from './paths.js';
import { insightShmName } from './device-stat.js';
import { INSIGHT_BYTES } from '../vmm/insight.js';
import { errorMessage } from '../util/errors.js';
import { waitForDirectory } from './dir-watch.js';
import { INSTANCE_RE, NAME_RE, SAVED_REASON, readRecord, recordPath, removeRecord, writeRecord, type DomainRecord } from './records.js';

export interface DomainSpec {
  domid: number;
  name: string;
  instance: string;
  runDir: string;
  evtchnShm: string;
  evtchnSize: number;
  magicShm: string;
  /** The validated guest config (the daemon resolved the default guest's paths). */
  config: GuestConfig;
  tcp?: { host: string; port: number };
  /** Start from this saved domain file (docs/SAVE.md) instead of building `config`'s images. */
  restore?: string;
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
  const c = s.config;
  if (typeof c !== 'object' || c === null) throw bad('config');
  if (c.kind !== 'linux' && c.kind !== 'bare') throw bad('config.kind');
  if (typeof c.kernel !== 'string' || (c.ramdisk !== undefined && typeof c.ramdisk !== 'string')) throw bad('config.kernel');
  if (!Number.isInteger(c.memoryMiB) || c.memoryMiB <= 0) throw bad('config.memoryMiB');
  if (c.mmioPolicy !== 'abort' && c.mmioPolicy !== 'crash-domain') throw bad('config.mmioPolicy');
  if (c.vuart !== 'sbsa_uart' && c.vuart !== 'pl011') throw bad('config.vuart');
  if (s.restore !== undefined && (typeof s.restore !== 'string' || !isAbsolute(s.restore))) throw bad('restore');
  if (c.layout !== undefined && c.layout !== 'xen' && c.layout !== 'qemu-virt') throw bad('config.layout');
  if (c.firmware !== undefined && typeof c.firmware !== 'string') throw bad('config.firmware');
  return s;
}

/** Run the guest on the VMM in a worker thread (src/vmm/domain-thread.ts) until it ends or `stopRequested` resolves. */
async function runGuest(
  spec: DomainSpec,
  evtchnMap: SharedMapping,
  evtchn: EventChannels,
  magic: SharedMapping,
  insight: SharedMapping,
  onPort: (port: number) => void,
  onListening: () => void,
  stopRequested: Promise<void>,
  onStarted: (dom: DomainWorker) => void,
): Promise<DomainExit> {
  const config = spec.config;
  // A saved domain is checked whole (readSavedFile) before anything is mapped; its RAM replaces the images.
  const restore = spec.restore !== undefined ? readSavedFile(spec.restore).machine : undefined;
  const image = restore ? restoreImage(restore) : await buildGuest(config);
  const dom = startDomainWorker({
    ...(restore ? { restore } : {}),
    domid: spec.domid,
    name: spec.name,
    image,
    policy: config.mmioPolicy,
    vuart: config.vuart,
    evtchn: { address: evtchnMap.address, size: evtchnMap.size },
    magicPages: { address: magic.address, size: magic.size },
    insight: { address: insight.address, size: insight.size },
    kick: () => evtchn.kick(spec.domid),
  });
  dom.vuartPort.then(onPort, () => {});
  // The vCPU posts this at a safe point once the guest unmasks a vuart receive interrupt.
  void dom.listening.then(onListening);
  void stopRequested.then(() => dom.stop());
  onStarted(dom);
  return dom.exited;
}

export async function runDomainHost(specPath: string): Promise<number> {
  const spec = validateSpec(JSON.parse(readFileSync(specPath, 'utf8')));
  const paths = runPaths(spec.runDir);
  const say = (m: string) => process.stderr.write(`vpl011 domain-host d${spec.domid} (${spec.name}): ${m}\n`);

  let requestStop!: () => void;
  const stopRequested = new Promise<void>((r) => (requestStop = r));
  process.on('SIGTERM', () => requestStop());
  process.on('SIGINT', () => requestStop());
  process.on('SIGHUP', () => {});
  // `vpl011 save` (./host-save.ts): the daemon's order, taken once the guest runs.
  let dom: DomainWorker | undefined;
  let savedTo: string | undefined;
  let saving = false;
  process.on('SIGUSR2', () => {
    const order = takeSaveOrder(paths.domainsDir, spec.domid);
    if (!order || !dom || saving || savedTo !== undefined) return;
    saving = true;
    void performSave(dom, new Uint8Array(magic.buffer), spec.config, spec.name, order, paths.domainsDir, spec.domid).then((ended) => {
      saving = false;
      if (!ended) return;
      savedTo = order.file;
      requestStop();
    });
  });

  const evtchnMap = openSharedMapping(spec.evtchnShm, { size: spec.evtchnSize });
  const evtchn = EventChannels.attach(evtchnMap.buffer, new FutexWaker(evtchnMap));
  const magicSize = NR_MAGIC_PAGES * XEN_PAGE_SIZE;
  const magic: SharedMapping = openSharedMapping(spec.magicShm, { create: true, size: magicSize });
  // The vpl011's published state and access trace (`vpl011 stat` / `trace`): host memory, private like the pages.
  const insight: SharedMapping = openSharedMapping(insightShmName(spec.magicShm), { create: true, size: INSIGHT_BYTES });

  const rec: DomainRecord = {
    domid: spec.domid,
    name: spec.name,
    instance: spec.instance,
    pid: process.pid,
    state: 'starting',
    magicShm: spec.magicShm,
    vuartPort: 0,
    summary: spec.config.firmware !== undefined ? `firmware ${spec.config.firmware}` : `${spec.config.kind} ${spec.config.kernel}`,
    // Input typed or piped before a Linux guest's driver opens the port would be drained and lost (amba-pl011).
    ...(inputWaitsForListener(spec.config) && spec.restore === undefined ? { inputHeld: true } : {}),
    ...(spec.tcp ? { tcp: spec.tcp } : {}),
    ...(spec.config.rxOverrun === 'strict' ? { rxOverrun: 'strict' as const } : {}),
    startedAt: new Date().toISOString(),
  };
  writeRecord(paths.domainsDir, rec);

  let exitInfo: DomainExit;
  try {
    exitInfo = await runGuest(spec, evtchnMap, evtchn, magic, insight, (port) => {
      rec.vuartPort = port;
      rec.state = 'running';
      writeRecord(paths.domainsDir, rec);
    }, () => {
      if (!rec.inputHeld) return;
      rec.inputHeld = false;
      if (rec.state === 'running') writeRecord(paths.domainsDir, rec);
    }, stopRequested, (d) => (dom = d));
  } catch (e) {
    exitInfo = { reason: 'crashed', message: errorMessage(e) };
  }
  // The guest's event channel is closed already: the worker's Machine.close ran domain_vpl011_deinit.

  rec.state = exitInfo.reason === 'crashed' ? 'crashed' : 'shutdown';
  rec.reason = exitInfo.reason;
  if (exitInfo.message) rec.message = exitInfo.message;
  // Saved away: the daemon must not drain the ring (what is left in OUT is in the file: docs/SAVE.md).
  if (savedTo !== undefined && exitInfo.reason === 'stopped') {
    rec.reason = SAVED_REASON;
    rec.message = `saved to ${savedTo}`;
  }
  // Said before the record changes: the daemon copies this file into its log once it sees the final state.
  say(`${rec.state}${exitInfo.message ? `: ${exitInfo.message}` : ''}`);
  if (existsSync(recordPath(paths.domainsDir, rec.domid))) writeRecord(paths.domainsDir, rec);

  // Let the daemon take the guest's last words out of the ring; it removes the record when done.
  const drained = await waitForDirectory(paths.domainsDir, () => readRecord(paths.domainsDir, rec.domid)?.instance !== rec.instance, DRAIN_WAIT_MS);
  if (!drained) {
    say('no daemon drained the console; giving up');
    removeRecord(paths.domainsDir, rec.domid);
  }
  if (exitInfo.reason !== 'crashed') rmSync(join(paths.domainsDir, `${rec.domid}.stderr`), { force: true });
  // Last: while the spec exists the daemon gives this domid to no new domain (requests/up.ts), whose files the lines
  // above would otherwise remove (a migrate's restore reused the domid as soon as the record was gone).
  rmSync(join(paths.domainsDir, `${rec.domid}.spec.json`), { force: true });
  magic.unlink();
  magic.close();
  insight.unlink();
  insight.close();
  evtchnMap.close();
  return exitInfo.reason === 'crashed' ? 1 : 0;
}
