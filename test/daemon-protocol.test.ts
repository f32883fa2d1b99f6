// The control protocol's request parser (src/daemon/protocol.ts) against hostile lines. Found by the control-socket
// fuzz campaign (bench/fuzz/control.ts): an op named after an Object.prototype member ("toString", "__proto__",
// "constructor", ...) passed the `op in allowed` check and then threw a TypeError out of the socket's data handler,
// which killed the daemon (no request may crash the daemon).
import { test } from './lib/bounded.js';
import assert from 'node:assert/strict';
import { parseRequest } from '../src/daemon/protocol.js';

const PROTO_NAMES = ['toString', '__proto__', 'constructor', 'hasOwnProperty', 'valueOf', 'isPrototypeOf', '__defineGetter__', 'propertyIsEnumerable', 'toLocaleString'];

test('an op named after an Object.prototype member is an unknown operation, not an exception', { timeout: 10_000 }, () => {
  for (const op of PROTO_NAMES) {
    for (const line of [JSON.stringify({ op }), JSON.stringify({ op, domain: 'x' }), `{"op":${JSON.stringify(op)},"__proto__":{"op":"ping"}}`]) {
      let r: ReturnType<typeof parseRequest>;
      assert.doesNotThrow(() => void (r = parseRequest(line)), `parseRequest(${line})`);
      assert.equal(typeof r!, 'string', `${line} is refused`);
      assert.match(r! as string, /^op: unknown operation/);
    }
  }
});

test('field names from Object.prototype are unknown fields of a known op', { timeout: 10_000 }, () => {
  for (const k of PROTO_NAMES) {
    const r = parseRequest(`{"op":"ping",${JSON.stringify(k)}:1}`);
    assert.equal(typeof r, 'string', `field ${k}`);
  }
  assert.deepEqual(parseRequest('{"op":"ping"}'), { op: 'ping' });
});
