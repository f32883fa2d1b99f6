// A Domain whose guest memory may live in cross-process shared memory (a MAP_SHARED mapping viewed as a plain
// ArrayBuffer): Domain.prepareRingForHelper insists on a SharedArrayBuffer because, within one process, only those
// can be shared between threads; a mapping is shared by construction, with the console daemon in another process.
import { Domain, DomainError } from '../xen/domain.js';
import { ConsoleRing } from '../xen/ring.js';

export class SharedPagesDomain extends Domain {
  override prepareRingForHelper(gfn: number): ConsoleRing {
    const page = this.mapGuestPage(gfn);
    if (!page.shared && !(page.buffer instanceof ArrayBuffer)) {
      throw new DomainError('EINVAL', `gfn 0x${gfn.toString(16)} is not in shareable memory`);
    }
    return new ConsoleRing(page.buffer, page.byteOffset);
  }
}
