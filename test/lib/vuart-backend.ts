// Be dom0's end of a domain thread's vuart in a test, as src/console/guest-session.ts is for `vpl011 run`: attach
// the domain's event channels, bind the backend port to the guest's vuart port, and map the ring page (magic page +
// VUART_PFN_OFFSET). One place for the four steps every in-process guest test starts with.
import { EventChannels } from '../../src/xen/evtchn.js';
import { ConsoleRingBackend } from '../../src/xen/ring.js';
import { VUART_PFN_OFFSET, XEN_PAGE_SIZE } from '../../src/xen/arch-arm.js';
import type { DomainThread } from '../../src/vmm/domain-thread.js';

export interface VuartBackendEnd {
  ev: EventChannels;
  /** dom0's port, bound to the guest's vuart port: notify(0, local) kicks the guest. */
  local: number;
  ring: ConsoleRingBackend;
}

/** `port`: the guest's vuart port (await dom.vuartPort). */
export function vuartBackend(dom: DomainThread, port: number): VuartBackendEnd {
  const ev = EventChannels.attach(dom.evtchn);
  const local = ev.bindInterdomain(0, 1, port);
  return { ev, local, ring: new ConsoleRingBackend(dom.magicPages, VUART_PFN_OFFSET * XEN_PAGE_SIZE) };
}
