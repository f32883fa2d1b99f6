// Domain (MMIO dispatch and refused-access policy, guest memory) and vuart init/deinit
// (domain_vpl011_init/deinit, XEN_DOMCTL_vuart_op), with every failure point unwound.
import { test } from './lib/bounded.js';
import assert from 'node:assert/strict';
import { Domain, DomainError, type MmioAccess, type RefusedAccessPolicy } from '../src/xen/domain.js';
import { EventChannels, ECS_FREE, ECS_UNBOUND } from '../src/xen/evtchn.js';
import { SpiLevels } from '../src/xen/spi-levels.js';
import { domainVpl011Init, domainVpl011Deinit, vuartOf, VuartError } from '../src/xen/vuart.js';
import { GUEST_MAGIC_BASE, GUEST_PL011_BASE, GUEST_VUART_GFN, GUEST_VPL011_SPI } from '../src/xen/arch-arm.js';
import { ConsoleRingBackend } from '../src/xen/ring.js';
import { vregReg32Clearbits, vregReg32Extract, vregReg32Update } from '../src/util/vreg.js';
import { MMIO_DONE } from '../src/device/ports.js';

function machine(opts: { policy?: RefusedAccessPolicy; ports?: number; sharedMagic?: boolean } = {}) {
  const evtchn = EventChannels.create({ maxDomains: 4, portsPerDomain: opts.ports ?? 8 });
  const vgic = new SpiLevels();
  const d = new Domain({ domid: 1, name: 'guest', vgic, evtchn, ...(opts.policy ? { policy: opts.policy } : {}) });
  const buf = opts.sharedMagic === false ? new ArrayBuffer(16384) : new SharedArrayBuffer(16384);
  d.addMemory({ name: 'magic', base: GUEST_MAGIC_BASE, size: 16384, buffer: buf, byteOffset: 0 });
  return { d, evtchn, vgic, buf };
}

const rd = (addr: number, width: 1 | 2 | 4 | 8 = 4): MmioAccess => ({ addr, width, write: false, value: 0 });

test('vreg_reg32 helpers: extract/update/clearbits on sub-words (asm/vreg.h)', () => {
  assert.equal(vregReg32Extract(0x11223344, 1, 1), 0x33);
  assert.equal(vregReg32Extract(0x11223344, 2, 2), 0x1122);
  assert.equal(vregReg32Update(0x11223344, 0xab, 3, 1), 0xab223344);
  assert.equal(vregReg32Clearbits(0xffff, 0x0f0f, 0, 2), 0xf0f0);
  assert.equal(vregReg32Clearbits(0xffffffff, 0xff, 2, 1), 0xff00ffff);
});

test('init maps GFN 0x39003, reserves SPI 32, registers 0x22000000, returns an unbound port for the backend', () => {
  const { d, evtchn, vgic } = machine();
  const port = domainVpl011Init(d, { consoleDomid: 0, gfn: GUEST_VUART_GFN });
  assert.equal(evtchn.state(1, port), ECS_UNBOUND);
  assert.equal(evtchn.remoteDomain(1, port), 0);
  assert.equal(vgic.isReserved(GUEST_VPL011_SPI), true);
  const a = rd(GUEST_PL011_BASE + 0x18);
  assert.equal(d.handleMmio(a), 'ok');
  assert.equal(a.value, 0x90);
  // the full path: guest write -> ring page at magic+3 -> backend
  d.handleMmio({ addr: GUEST_PL011_BASE, width: 1, write: true, value: 0x68 });
  const page = d.mapGuestPage(GUEST_VUART_GFN);
  assert.equal(page.byteOffset, 3 * 4096);
  assert.deepEqual(Array.from(new ConsoleRingBackend(page.buffer, page.byteOffset).drainOut()), [0x68]);
  assert.throws(() => domainVpl011Init(d, { consoleDomid: 0, gfn: GUEST_VUART_GFN }), (e: unknown) => e instanceof VuartError && e.code === 'EEXIST');
});

test('refused access policy: abort by default (0b6122a117), crash-domain records why', () => {
  const a = machine();
  domainVpl011Init(a.d, { consoleDomid: 0, gfn: GUEST_VUART_GFN });
  assert.equal(a.d.handleMmio(rd(GUEST_PL011_BASE, 8)), 'inject-abort');
  assert.equal(a.d.handleMmio(rd(GUEST_PL011_BASE + 0x44)), 'inject-abort');
  assert.equal(a.d.crashed, false);
  assert.equal(a.d.handleMmio(rd(0x1234)), 'inject-abort', 'no device there');
  const b = machine({ policy: 'crash-domain' });
  domainVpl011Init(b.d, { consoleDomid: 0, gfn: GUEST_VUART_GFN });
  assert.equal(b.d.handleMmio(rd(GUEST_PL011_BASE + 0x44)), 'crashed');
  assert.match(b.d.crashReason ?? '', /read w4 at 0x22000044 \(vpl011 \+0x44\)/);
  assert.equal(b.d.handleMmio(rd(GUEST_PL011_BASE + 0x18)), 'crashed');
});

test('init failure: gfn not backed / not shareable -> nothing allocated', () => {
  for (const [m, gfn] of [
    [machine(), 0x12345],
    [machine({ sharedMagic: false }), GUEST_VUART_GFN],
  ] as const) {
    assert.throws(() => domainVpl011Init(m.d, { consoleDomid: 0, gfn }), VuartError);
    assert.equal(m.vgic.isReserved(32), false);
    for (let p = 1; p < 8; p++) assert.equal(m.evtchn.state(1, p), ECS_FREE);
    assert.equal(vuartOf(m.d), undefined);
  }
  assert.throws(() => machine().d.mapGuestPage(-1), DomainError);
});

test('init failure: no free event channel -> nothing reserved or registered (08bbc1c02d)', () => {
  const m = machine({ ports: 2 });
  m.evtchn.allocUnbound(1, 0); // the only port
  assert.throws(() => domainVpl011Init(m.d, { consoleDomid: 0, gfn: GUEST_VUART_GFN }), (e: unknown) => e instanceof VuartError && e.code === 'ENOSPC');
  assert.equal(m.vgic.isReserved(32), false);
  assert.equal(m.d.mmio.list().length, 0);
});

test('init failure: SPI 32 held by another device -> port freed, and the other reservation is NOT freed (upstream bug)', () => {
  const m = machine();
  assert.equal(m.vgic.reserveSpi(32), true); // someone else's
  assert.throws(() => domainVpl011Init(m.d, { consoleDomid: 0, gfn: GUEST_VUART_GFN }), (e: unknown) => e instanceof VuartError && e.code === 'EBUSY');
  assert.equal(m.vgic.isReserved(32), true, 'still reserved by its owner');
  for (let p = 1; p < 8; p++) assert.equal(m.evtchn.state(1, p), ECS_FREE);
  assert.equal(m.d.mmio.list().length, 0);
});

test('init failure: MMIO window taken -> SPI freed and port closed', () => {
  const m = machine();
  m.d.mmio.register(GUEST_PL011_BASE, 0x1000, { read: () => 0, write: () => MMIO_DONE }, 'squatter');
  assert.throws(() => domainVpl011Init(m.d, { consoleDomid: 0, gfn: GUEST_VUART_GFN }), VuartError);
  assert.equal(m.vgic.isReserved(32), false);
  for (let p = 1; p < 8; p++) assert.equal(m.evtchn.state(1, p), ECS_FREE);
  assert.equal(m.d.mmio.list().length, 1);
});

test('deinit undoes init and is idempotent; init works again afterwards', () => {
  const m = machine();
  const port = domainVpl011Init(m.d, { consoleDomid: 0, gfn: GUEST_VUART_GFN });
  domainVpl011Deinit(m.d);
  domainVpl011Deinit(m.d);
  assert.equal(m.vgic.isReserved(32), false);
  assert.equal(m.evtchn.state(1, port), ECS_FREE);
  assert.equal(m.d.mmio.list().length, 0);
  domainVpl011Init(m.d, { consoleDomid: 0, gfn: GUEST_VUART_GFN });
});

test('backend notification over the event channel reaches the device (vpl011_notification)', () => {
  const m = machine();
  const port = domainVpl011Init(m.d, { consoleDomid: 0, gfn: GUEST_VUART_GFN });
  const bport = m.evtchn.bindInterdomain(0, 1, port);
  const page = m.d.mapGuestPage(GUEST_VUART_GFN);
  const be = new ConsoleRingBackend(page.buffer, page.byteOffset);
  m.d.handleMmio({ addr: GUEST_PL011_BASE + 0x38, width: 4, write: true, value: 0x40 });
  be.writeIn(new TextEncoder().encode('k'));
  assert.equal(m.vgic.level(32), false, 'no event yet');
  m.evtchn.notify(0, bport);
  m.evtchn.dispatch(1);
  assert.equal(m.vgic.level(32), true);
  // and the device notifies the backend when OUT goes non-empty
  const seen = m.evtchn.doorbell(0);
  m.d.handleMmio({ addr: GUEST_PL011_BASE, width: 1, write: true, value: 0x41 });
  assert.equal(m.evtchn.isPending(0, bport), true);
  assert.equal(m.evtchn.doorbell(0), seen + 1);
});
