// Just enough of the Kafka protocol to produce one record with a chosen timestamp.
//
// The dashboard test needs a record that is late for a window. kfn's publish API
// and kcat both stamp records with the current time, and the browser test has no
// Kafka client among its dependencies, so this writes one Produce request (v3,
// record batch v2) by hand. It talks to a single broker, which is what kfn's
// embedded broker is: every partition's leader is the bootstrap address.

import net from "node:net";

const PRODUCE = 0;
const PRODUCE_VERSION = 3; // the first version carrying record batches v2 (timestamps per record)
const CLIENT_ID = "kfn-browser-test";

// CRC-32C (Castagnoli), which record batches v2 use, not zlib's CRC-32.
const CRC32C_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

function crc32c(buf) {
  let crc = 0xffffffff;
  for (const byte of buf) crc = CRC32C_TABLE[(crc ^ byte) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

/** Zigzag varint, as record fields use. */
function varint(n) {
  let z = n >= 0 ? n * 2 : -n * 2 - 1;
  const out = [];
  while (z >= 0x80) {
    out.push((z % 0x80) | 0x80);
    z = Math.floor(z / 0x80);
  }
  out.push(z);
  return Buffer.from(out);
}

const i8 = (n) => { const b = Buffer.alloc(1); b.writeInt8(n); return b; };
const i16 = (n) => { const b = Buffer.alloc(2); b.writeInt16BE(n); return b; };
const i32 = (n) => { const b = Buffer.alloc(4); b.writeInt32BE(n); return b; };
const u32 = (n) => { const b = Buffer.alloc(4); b.writeUInt32BE(n); return b; };
const i64 = (n) => { const b = Buffer.alloc(8); b.writeBigInt64BE(BigInt(n)); return b; };
const str = (s) => { const b = Buffer.from(s, "utf8"); return Buffer.concat([i16(b.length), b]); };
const bytesOrNull = (b) => (b === null ? varint(-1) : Buffer.concat([varint(b.length), b]));

/** A record batch v2 holding one record. */
function recordBatch({ key, value, timestampMs }) {
  const body = Buffer.concat([
    i8(0), // attributes
    varint(0), // timestamp delta
    varint(0), // offset delta
    bytesOrNull(key === null ? null : Buffer.from(key, "utf8")),
    bytesOrNull(Buffer.from(value, "utf8")),
    varint(0), // headers
  ]);
  const record = Buffer.concat([varint(body.length), body]);
  // Everything the CRC covers: from the attributes to the end.
  const afterCrc = Buffer.concat([
    i16(0), // attributes: no compression, CreateTime
    i32(0), // last offset delta
    i64(timestampMs), // first timestamp
    i64(timestampMs), // max timestamp
    i64(-1), // producer id
    i16(-1), // producer epoch
    i32(-1), // base sequence
    i32(1), // records
    record,
  ]);
  const afterLength = Buffer.concat([
    i32(0), // partition leader epoch
    i8(2), // magic
    u32(crc32c(afterCrc)),
    afterCrc,
  ]);
  return Buffer.concat([i64(0), i32(afterLength.length), afterLength]);
}

/**
 * Produces one record to `topic`/`partition` at `bootstrap` ("host:port") with
 * CreateTime `timestampMs`; resolves once the broker acknowledged it.
 */
export function produceAt(bootstrap, { topic, partition, key = null, value, timestampMs }, timeoutMs = 10_000) {
  const [host, port] = bootstrap.split(",")[0].split(":");
  const batch = recordBatch({ key, value, timestampMs });
  const correlationId = 1;
  const request = Buffer.concat([
    i16(PRODUCE), i16(PRODUCE_VERSION), i32(correlationId), str(CLIENT_ID),
    i16(-1), // transactional id: null
    i16(-1), // acks: all
    i32(timeoutMs),
    i32(1), str(topic), // one topic
    i32(1), i32(partition), i32(batch.length), batch, // one partition
  ]);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), host);
    let received = Buffer.alloc(0);
    const fail = (err) => { socket.destroy(); reject(err); };
    socket.setTimeout(timeoutMs, () => fail(new Error(`produce to ${topic} at ${bootstrap}: no answer in ${timeoutMs} ms`)));
    socket.on("error", fail);
    socket.on("connect", () => socket.write(Buffer.concat([i32(request.length), request])));
    socket.on("data", (chunk) => {
      received = Buffer.concat([received, chunk]);
      if (received.length < 4 || received.length < 4 + received.readInt32BE(0)) return;
      socket.end();
      // size, correlation id, [topic: name, [partition, error, base offset, log append time]], throttle
      let at = 8;
      const topics = received.readInt32BE(at); at += 4;
      if (topics !== 1) return reject(new Error(`produce to ${topic}: answer names ${topics} topics`));
      at += 2 + received.readInt16BE(at); // topic name
      at += 4; // partition count
      at += 4; // partition
      const error = received.readInt16BE(at); at += 2;
      const offset = received.readBigInt64BE(at);
      if (error !== 0) reject(new Error(`produce to ${topic}/${partition}: Kafka error code ${error}`));
      else resolve({ partition, offset: Number(offset) });
    });
  });
}
