// `vpl011 stat` / `vpl011 trace` end to end: a real daemon runs guests/bare/insight-probe.S (a known access sequence)
// in its own domain host; the CLI reads the domain's insight region. Exact register and counter values, the JSON
// shape, --why-irq, a live trace that replays with identical read values, --follow, and the counters across a daemon
// kill -9 and restart.
import { after, before } from 'node:test';
import { test } from './lib/bounded.js';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BIN, Harness, runCli, sleep } from './lib/daemon-harness.js';
import { insightShmName, type DeviceStat } from '../src/daemon/device-stat.js';
import { listRecords } from '../src/daemon/records.js';
import { runPaths } from '../src/daemon/paths.js';
import { ensureGuestImages } from '../src/toolstack/fetch.js';

const h = new Harness();
before(async () => {
  await h.startDaemon();
  await h.up('probe', 'insight-probe');
  await h.until(() => h.log('probe').toString() === 'OK\n', 'the probe to say OK');
});
after(() => h.cleanup());

async function stat(...extra: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return runCli(['stat', 'probe', '--run-dir', h.runDir, ...extra]);
}
async function statJson(): Promise<DeviceStat> {
  const r = await stat('--json');
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as DeviceStat;
}
/** Wait for the probe to be idle (in WFI) with `out` bytes written: the snapshot is then exact. */
async function idle(out: number, inBytes: number): Promise<DeviceStat> {
  let s: DeviceStat | undefined;
  await h.until(async () => {
    s = await statJson();
    return s.counters.bytesOut === out && s.counters.bytesIn === inBytes && s.ring.out.level === 0 && s.vcpu.wfiSleeps > 0;
  }, `the probe idle with ${out} bytes out`, 60_000);
  return s!;
}

test('stat --json: exact values of the known sequence, and the documented shape', { timeout: 120_000 }, async () => {
  const s = await idle(3, 0);
  assert.deepEqual(Object.keys(s).sort(), ['counters', 'decoded', 'domid', 'irq', 'name', 'profile', 'registers', 'ring', 'snapshot', 'state', 'trace', 'vcpu', 'whyIrq']);
  assert.equal(s.name, 'probe');
  assert.equal(s.state, 'running');
  assert.equal(s.profile, 'sbsa');
  assert.equal(s.registers.IMSC, 0x50);
  assert.deepEqual(s.decoded.IMSC, ['RX', 'RT']);
  assert.equal(s.registers.MIS, 0);
  assert.equal(s.registers.FR! & 0x7f, 0x10);
  assert.deepEqual(s.ring.out, { prod: 3, cons: 3, level: 0, size: 2048, deviceProd: 3, deviceSeenCons: s.ring.out.deviceSeenCons });
  assert.deepEqual(s.ring.in, { prod: 0, cons: 0, level: 0, size: 1024, deviceCons: 0, deviceSeenProd: 0 });
  assert.equal(s.counters.bytesOut, 3);
  assert.equal(s.counters.bytesIn, 0);
  assert.equal(s.counters.unhandledAccesses, 1);
  assert.equal(s.counters.refusedAccesses, 0);
  assert.equal(s.counters.emptyDrReads, 0);
  assert.equal(s.irq.line, false);
  assert.equal(s.irq.rxTriggerBytes, 1008);
  assert.equal(s.irq.txTriggerFreeBytes, 16);
  assert.equal(s.irq.spi.intid, 32);
  assert.equal(s.irq.spi.enabled, false);
  assert.equal(s.trace.enabled, false);
  assert.equal(s.snapshot.vcpuRunning, true);
  assert.equal(s.snapshot.vcpuIdle, true, 'published as the probe went to sleep in WFI');
  assert.ok(s.snapshot.ageMs >= 0);

  const human = await stat();
  assert.equal(human.code, 0, human.stderr);
  assert.match(human.stdout, /^d\d+ probe: sbsa vpl011, domain running, published as the vCPU went idle \(WFI\) \d+ ms ago$/m);
  assert.match(human.stdout, /^ {2}IMSC {3}0x050 {2}RX RT$/m);
  assert.match(human.stdout, /^ {2}OUT {2}prod 0x00000003 cons 0x00000003 {2}0 of 2048 bytes/m);
  assert.match(human.stdout, /^ {2}unhandledAccesses {2}1$/m);

  const why = await stat('--why-irq');
  assert.equal(why.code, 0, why.stderr);
  const lines = why.stdout.trim().split('\n');
  assert.deepEqual(lines.map((l) => l.split(':')[0]), ['RX', 'RT', 'TX', 'FE', 'PE', 'BE', 'OE', 'line', 'GIC']);
  assert.equal(lines[0], 'RX: low: 0 bytes in IN < 1,008 (the RX trigger level) (IMSC.RXIM=1)');
  assert.match(lines[8]!, /^GIC: SPI 32 line low, not pending, not active, disabled/);
});

test('stat/trace: an unknown domain is a one-line error, exit 2', async () => {
  for (const cmd of ['stat', 'trace']) {
    const r = await runCli([cmd, 'nosuch', '--run-dir', h.runDir]);
    assert.equal(r.code, 2);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, /no domain nosuch/);
  }
});

test('trace: off by default; --on records the live accesses; the script replays with identical read values', { timeout: 180_000 }, async () => {
  const off = await runCli(['trace', 'probe', '--run-dir', h.runDir]);
  assert.equal(off.code, 1);
  assert.match(off.stderr, /the trace is off .*--on/);
  const on = await runCli(['trace', 'probe', '--on', '--run-dir', h.runDir]);
  assert.equal(on.code, 0, on.stderr);
  const a = await h.attach('probe');
  try {
    a.sock.write('a');
    await h.until(() => h.log('probe').toString() === 'OK\na', 'the echo');
    a.sock.write('b'); // separately: its notification lands inside the trace, after the first record
    await h.until(() => h.log('probe').toString() === 'OK\nab', 'the echo');
    await idle(5, 2);
    const r = await runCli(['trace', 'probe', '-n', '200', '--run-dir', h.runDir]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^# vpl011 trace of d\d+ probe: \d+ accesses/);
    assert.match(r.stdout, /^expect 0x000 0x00000061 4 # t=\d+\.\d{6} s$/m, 'the DR read of "a"');
    assert.match(r.stdout, /^write 0x000 0x62 4 # t=/m, 'the echo of "b"');
    assert.match(r.stdout, /^notify # t=/m);
    const file = join(h.runDir, 'trace.txt');
    writeFileSync(file, r.stdout);
    const replay = await runCli(['replay', file]);
    assert.equal(replay.code, 0, `${replay.stdout}\n--- script:\n${r.stdout}`);

    // --follow: new accesses appear as they happen; SIGINT ends it with 0.
    const child = spawn(process.execPath, [BIN, 'trace', 'probe', '-n', '1', '--follow', '--run-dir', h.runDir], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    try {
      await h.until(() => out.includes('# the trace:'), 'the follower to start', 30_000);
      a.sock.write('z');
      await h.until(() => /^expect 0x000 0x0000007a 4 /m.test(out) && /^write 0x000 0x7a 4 /m.test(out), 'the followed read and echo of "z"', 30_000);
    } finally {
      const code = new Promise<number | null>((res) => child.once('exit', (c) => res(c)));
      child.kill('SIGINT');
      assert.equal(await code, 0);
    }
    const stopped = await runCli(['trace', 'probe', '--off', '--run-dir', h.runDir]);
    assert.equal(stopped.code, 0, stopped.stderr);
    await sleep(200);
    const s = await statJson();
    assert.equal(s.trace.enabled, false);
  } finally {
    a.close();
  }
});

/** The probe idle: two snapshots a while apart with the same counters, OUT drained. */
async function settled(): Promise<DeviceStat> {
  let prev: DeviceStat | undefined;
  let s: DeviceStat | undefined;
  await h.until(async () => {
    prev = s;
    await sleep(300);
    s = await statJson();
    return prev !== undefined && JSON.stringify(prev.counters) === JSON.stringify(s.counters) && s.ring.out.level === 0;
  }, 'the probe to settle', 60_000);
  return s!;
}

test('counters survive a daemon kill -9 and restart; list --json carries them', { timeout: 180_000 }, async () => {
  const a = await h.attach('probe');
  a.sock.write('q');
  await h.until(() => h.log('probe').toString().endsWith('q'), 'the echo');
  a.close();
  const before = await settled();
  assert.ok(before.counters.bytesIn >= 1 && before.counters.bytesOut >= 4);
  await h.killDaemon('SIGKILL');
  const during = await statJson(); // no daemon: the region is read directly
  assert.deepEqual(during.counters, before.counters);
  await h.startDaemon();
  const after = await statJson();
  assert.deepEqual(after.counters, before.counters, 'the device kept counting across the restart');
  const list = await runCli(['list', '--json', '--run-dir', h.runDir]);
  assert.equal(list.code, 0, list.stderr);
  const doms = JSON.parse(list.stdout) as { name: string; bytesOut: number; device?: { counters: DeviceStat['counters']; line: boolean; trace: boolean } }[];
  const d = doms.find((x) => x.name === 'probe');
  assert.ok(d?.device, 'list --json has the device part');
  assert.deepEqual(d.device.counters, before.counters);
  assert.equal(d.bytesOut, before.counters.bytesOut, "the console's own count agrees with the device's");
});

test('destroy: the insight object goes with the domain (and with a host killed by -9)', { timeout: 120_000 }, async () => {
  const rec = listRecords(runPaths(h.runDir).domainsDir).find((r) => r.name === 'probe')!;
  const obj = `/dev/shm${insightShmName(rec.magicShm)}`;
  assert.ok(existsSync(obj), 'the running domain has its insight object');
  assert.equal(statSync(obj).mode & 0o777, 0o600);
  const res = await h.request({ op: 'destroy', domain: 'probe' });
  assert.ok(res.ok, JSON.stringify(res));
  await h.until(() => !existsSync(obj), 'the insight object to be unlinked', 60_000);
  // A host that dies without unwinding: the daemon unlinks it with the magic pages.
  await h.up('victim', 'insight-probe');
  await h.until(() => h.log('victim').toString() === 'OK\n', 'the victim to say OK');
  const v = listRecords(runPaths(h.runDir).domainsDir).find((r) => r.name === 'victim')!;
  const vobj = `/dev/shm${insightShmName(v.magicShm)}`;
  assert.ok(existsSync(vobj));
  process.kill(v.pid, 'SIGKILL');
  await h.until(() => !existsSync(vobj), "the dead host's insight object to be unlinked by the daemon", 60_000);
  const gone = await runCli(['stat', 'victim', '--run-dir', h.runDir]);
  assert.equal(gone.code, 2);
});

test('a Linux guest with the pl011 profile (AMBA driver, interrupt-driven): its live trace replays with identical read values', { timeout: 300_000 }, async () => {
  const cfg = join(h.runDir, 'amba.cfg');
  const images = await ensureGuestImages({ quiet: true });
  writeFileSync(cfg, `name = "amba"\nkind = "linux"\nkernel = "${images.kernel}"\nramdisk = "${images.initrd}"\nvuart = "pl011"\nmemory = 256\n`);
  const res = await h.request({ op: 'up', config: cfg });
  assert.ok(res.ok, JSON.stringify(res));
  h.trackHosts();
  try {
    await h.until(() => /\/ # /.test(h.log('amba').toString('latin1')), 'the shell prompt', 240_000);
    const on = await runCli(['trace', 'amba', '--on', '--run-dir', h.runDir]);
    assert.equal(on.code, 0, on.stderr);
    const a = await h.attach('amba');
    try {
      a.sock.write('echo amba-$((6*7))\n');
      await h.until(() => h.log('amba').toString('latin1').includes('amba-42'), 'the answer', 60_000);
    } finally {
      a.close();
    }
    await sleep(500);
    const r = await runCli(['trace', 'amba', '-n', '8191', '--run-dir', h.runDir]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^profile pl011$/m);
    assert.match(r.stdout, /^write 0x030 0x[0-9a-f]+$/m, 'the prelude restores CR');
    assert.match(r.stdout, /^expect 0x03c 0x[0-9a-f]{8} [124] # t=/m, 'the interrupt handler reads RIS');
    const file = join(h.runDir, 'amba-trace.txt');
    writeFileSync(file, r.stdout);
    const replay = await runCli(['replay', file]);
    assert.equal(replay.code, 0, replay.stdout.split('\n').filter((l) => !l.endsWith(' ok')).slice(-20).join('\n'));
    const s = await runCli(['stat', 'amba', '--json', '--run-dir', h.runDir]);
    const st = JSON.parse(s.stdout) as DeviceStat;
    assert.equal(st.profile, 'pl011');
    assert.equal(st.registers.CR! & 0x301, 0x301, 'the open tty enabled the UART, TX and RX');
    assert.equal(st.registers.LCR_H! & 0x10, 0x10, 'FIFOs on');
    assert.equal(st.irq.spi.enabled, true, 'Linux enabled SPI 32');
  } finally {
    await h.request({ op: 'destroy', domain: 'amba' });
  }
});
