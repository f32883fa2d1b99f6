// What vpl011 needs to start more of itself (the daemon, a domain host) and to let a user leave a console.
import { fileURLToPath } from 'node:url';

/** The `vpl011` command's entry script (bin/vpl011.js), for spawning with process.execPath; the same from src/ and dist/src/. */
export const VPL011_BIN = fileURLToPath(new URL('../../../bin/vpl011.js', import.meta.url));

/** ^] (0x1d): the byte that detaches a console, as xenconsole's default escape character. */
export const CTRL_RIGHT_BRACKET = 0x1d;
