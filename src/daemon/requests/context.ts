// What a control request's handler may use: the daemon's parts, built once when it starts (src/daemon/daemon.ts).
import type { SharedMapping } from '../../host/shm.js';
import type { EventChannels } from '../../xen/evtchn.js';
import type { ClientSessions } from '../client-sessions.js';
import type { NameClaims } from '../name-claims.js';
import type { RunPaths } from '../paths.js';
import type { ServedConsoles } from '../served-console.js';
import type { Supervisor } from '../supervisor.js';
import type { WebService } from '../web-service.js';
import type { Resumer } from '../resume.js';

export interface DaemonContext {
  readonly paths: RunPaths;
  /** The hypervisor-wide event-channel table (we are its domain 0) and the shm object it lives in. */
  readonly evtchn: EventChannels;
  readonly evtchnMap: SharedMapping;
  readonly served: ServedConsoles;
  readonly supervisor: Supervisor;
  readonly sessions: ClientSessions;
  /** Resumable clients' state: `migrate` tells it where a domain went, so they follow (docs/SAVE.md). */
  readonly resumer: Resumer;
  /** Names of domains being started (claimed atomically with the uniqueness check). */
  readonly names: NameClaims;
  readonly web: WebService;
  readonly say: (line: string) => void;
}
