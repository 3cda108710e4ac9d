// native/callrecv.c, the redundant bench's call receiver (src/lab/bench/redundant.ts): each
// datagram's one-way delay comes from the kernel's receive timestamp, not from when the process
// read it. Checked on loopback (no lab, no root): a datagram that arrives while the receiver is
// stopped (SIGSTOP) still gets the delay it had when it reached the socket.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { existsSync } from 'node:fs';
import { callrecvPath } from '../src/lab/bench/redundant.js';

const datagram = (seq: number, sentMs: number, len = 200): Buffer => {
  const b = Buffer.alloc(len);
  b.writeUInt32BE(seq, 0);
  b.writeDoubleBE(sentMs, 4);
  return b;
};
const clock = () => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('callrecv: one-way delay from the kernel receive stamp, the datagram\'s send time and seq; short datagrams ignored', { timeout: 20_000, skip: !existsSync(callrecvPath()) && 'build/native/callrecv not built (scripts/setup.sh)' }, async () => {
  const port = 20_000 + (process.pid % 20_000);
  const p = spawn(callrecvPath(), ['127.0.0.1', String(port), '1'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  p.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const closed = new Promise<number | null>((r) => p.on('close', r));
  for (let i = 0; i < 250 && !out.includes('listening'); i++) await sleep(20);
  assert.ok(out.includes('listening'), 'it says when it listens');
  const s = createSocket('udp4');
  const send = (b: Buffer) => new Promise<void>((r, j) => s.send(b, port, '127.0.0.1', (e) => (e ? j(e) : r())));
  const sent7 = clock() - 50;
  await send(datagram(7, sent7)); // sent "50 ms ago"
  await send(Buffer.alloc(8)); // too short for seq + time: ignored
  await sleep(100);
  p.kill('SIGSTOP'); // the receiver is not scheduled ...
  await send(datagram(8, clock())); // ... when this one arrives
  await sleep(300);
  p.kill('SIGCONT');
  s.close();
  assert.equal(await closed, 0);
  const owd = (JSON.parse(out.trim().split('\n').pop()!) as { owd: [number, number, number][] }).owd;
  assert.deepEqual(owd.map(([seq]) => seq), [7, 8]);
  assert.ok(Math.abs(owd[0]![2] - sent7) < 0.001, 'and each datagram\'s send time');
  assert.ok(owd[0]![1] >= 50 && owd[0]![1] < 60, `seq 7: ${owd[0]![1]} ms, sent 50 ms before it was sent`);
  assert.ok(owd[1]![1] >= 0 && owd[1]![1] < 20, `seq 8: ${owd[1]![1]} ms: the kernel's stamp, not the 300 ms the receiver was stopped`);
});
