// What the daemon sends a resumable console client (`vpl011 console`, docs/DAEMON.md "Resuming"): after the attach
// response line, frames instead of raw bytes, so that output can carry its place in the log (the client's cursor)
// and input acknowledgements can travel beside it. A frame: type (1 byte), payload length (u32 big-endian), payload.
//   'O' output:  end offset in the log (f64 BE), then the bytes; the client's cursor becomes that offset
//   'M' marker:  text from the daemon (dropped output, a rotated log): shown, not part of the guest's output
//   'A' ack:     total input bytes of this session now in the guest's IN ring (f64 BE)
//   'E' end:     the domain is gone (the payload says why); the client prints it and exits
// The client's direction stays raw input bytes.
import { Vpl011Error } from '../util/errors.js';
export const FRAME_OUTPUT = 0x4f;
export const FRAME_MARKER = 0x4d;
export const FRAME_ACK = 0x41;
export const FRAME_END = 0x45;
/** 'F' follow: the domain is moving to a new instance of the same name (`vpl011 migrate`): reattach, same cursors. */
export const FRAME_FOLLOW = 0x46;

/** Largest payload a client accepts (the daemon's frames are at most a flush of output, 64 KiB or so). */
export const MAX_FRAME_PAYLOAD = 4 << 20;

function header(type: number, len: number): Buffer {
  const h = Buffer.allocUnsafe(5);
  h[0] = type;
  h.writeUInt32BE(len, 1);
  return h;
}

export function outputFrame(endOffset: number, data: Uint8Array): Buffer {
  const b = Buffer.allocUnsafe(13 + data.length);
  header(FRAME_OUTPUT, 8 + data.length).copy(b, 0);
  b.writeDoubleBE(endOffset, 5);
  b.set(data, 13);
  return b;
}

export function textFrame(type: typeof FRAME_MARKER | typeof FRAME_END | typeof FRAME_FOLLOW, text: string | Uint8Array): Buffer {
  const t = typeof text === 'string' ? Buffer.from(text) : text;
  return Buffer.concat([header(type, t.length), t]);
}

export function ackFrame(total: number): Buffer {
  const b = Buffer.allocUnsafe(13);
  header(FRAME_ACK, 8).copy(b, 0);
  b.writeDoubleBE(total, 5);
  return b;
}

export type Frame =
  | { type: 'output'; endOffset: number; data: Buffer }
  | { type: 'marker'; text: Buffer }
  | { type: 'ack'; total: number }
  | { type: 'end'; text: Buffer }
  | { type: 'follow'; text: Buffer };

export class FrameError extends Vpl011Error<'EPROTO'> {
  constructor(message: string) {
    super('EPROTO', message);
  }
}

/** Splits the daemon's byte stream into frames (bounded: a frame larger than MAX_FRAME_PAYLOAD is an error). */
export class FrameReader {
  private buf: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): void {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
  }

  next(): Frame | undefined {
    if (this.buf.length < 5) return undefined;
    const type = this.buf[0]!;
    const len = this.buf.readUInt32BE(1);
    if (len > MAX_FRAME_PAYLOAD) throw new FrameError(`frame of ${len} bytes from the daemon`);
    if (this.buf.length < 5 + len) return undefined;
    const p = this.buf.subarray(5, 5 + len);
    this.buf = this.buf.subarray(5 + len);
    switch (type) {
      case FRAME_OUTPUT:
        if (len < 8) throw new FrameError('short output frame');
        return { type: 'output', endOffset: p.readDoubleBE(0), data: p.subarray(8) };
      case FRAME_MARKER:
        return { type: 'marker', text: p };
      case FRAME_ACK:
        if (len !== 8) throw new FrameError('bad ack frame');
        return { type: 'ack', total: p.readDoubleBE(0) };
      case FRAME_END:
        return { type: 'end', text: p };
      case FRAME_FOLLOW:
        return { type: 'follow', text: p };
      default:
        throw new FrameError(`unknown frame type ${type}`);
    }
  }
}
