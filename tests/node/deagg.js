// Reads Kinesis records as JSON lines on stdin, {"shard", "start", "end", "seq", "partitionKey",
// "data" (base64)} with the shard's hash-key range in decimal, and takes each apart with the awslabs
// deaggregator (aws-kinesis-agg, checksums checked). Writes one JSON line per user record:
// {"shard", "seq", "sub", "partitionKey", "data" (base64), "hash", "dropped"}, where dropped applies
// the KCL's rule: a user record of an aggregate whose hash key (explicit, or MD5 of its partition
// key) lies outside the range of the shard it was read from is dropped by KCL consumers.
// A record the deaggregator rejects gives {"shard", "seq", "error"}.
'use strict';
const agg = require('aws-kinesis-agg');
const crypto = require('crypto');
const readline = require('readline');

function hashOf(ur) {
  if (ur.explicitPartitionKey) return BigInt(ur.explicitPartitionKey);
  return BigInt('0x' + crypto.createHash('md5').update(Buffer.from(ur.partitionKey, 'utf8')).digest('hex'));
}

const lines = [];
readline.createInterface({ input: process.stdin }).on('line', (l) => { if (l.trim()) lines.push(JSON.parse(l)); })
  .on('close', () => {
    for (const r of lines) {
      const lo = BigInt(r.start), hi = BigInt(r.end);
      const aggregated = Buffer.from(r.data, 'base64').subarray(0, 4).equals(Buffer.from([0xf3, 0x89, 0x9a, 0xc2]));
      agg.deaggregateSync({ partitionKey: r.partitionKey, data: r.data, sequenceNumber: r.seq }, true, (err, urs) => {
        if (err) {
          process.stdout.write(JSON.stringify({ shard: r.shard, seq: r.seq, error: String(err) }) + '\n');
          return;
        }
        urs.forEach((ur, i) => {
          const h = hashOf(ur);
          process.stdout.write(JSON.stringify({
            shard: r.shard, seq: r.seq, sub: i, partitionKey: ur.partitionKey,
            data: Buffer.from(ur.data, 'base64').toString('base64'), hash: h.toString(),
            dropped: aggregated && (h < lo || h > hi),
          }) + '\n');
        });
      });
    }
  });
