// Probe v2 (bpf/mp.h "struct mp_probe"): the codec of the control message that carries liveness,
// path MTU discovery, admin-down and budgets. Layout against BTF is test/abi.test.ts's job; this
// checks the meaning of the fields and the padding rules.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as abi from '../src/datapath/abi.js';
import { answer, decodeProbe, encodeProbe, PROBE_LEN, PROBE_MAX_LEN, udpOverhead, type Probe } from '../src/run/probe.js';

const req: Probe = { linkId: 2, reply: false, metric: 1, carrier: abi.MP_CARRIER_UDP, probeSeq: 9, sentNs: 123n, rateBps: 20_000_000n, owdUs: 5000 };
const at = (n: string): number => abi.MP_HDR_LEN + abi.offsetOf(abi.MP_PROBE, n);

describe('probe v2', () => {
  it('is 64 bytes unpadded and round-trips every request field', () => {
    assert.equal(PROBE_LEN, 64);
    const b = encodeProbe({ ...req, adminDown: true, pmtuDown: 1280, pmtuUp: 1500, replyLen: 1400, pmtuProbe: true }, 0);
    assert.equal(b.length, 64);
    assert.equal(b.readUInt8(at('flags')), abi.MP_PROBE_F_ADMIN_DOWN | abi.MP_PROBE_F_PMTU);
    const d = decodeProbe(b)!;
    assert.deepEqual(
      [d.reply, d.metric, d.probeSeq, d.sentNs, d.rateBps, d.owdUs, d.adminDown, d.pmtuProbe, d.replyLen, d.pmtuDown, d.pmtuUp, d.len],
      [false, 1, 9, 123n, 20_000_000n, 5000, true, true, 1400, 1280, 1500, 64],
    );
  });

  it('pads to the asked length with zeros, and refuses non-zero padding or a length out of range', () => {
    const b = encodeProbe(req, 0, 1452);
    assert.equal(b.length, 1452);
    assert.equal(decodeProbe(b)?.len, 1452);
    b[1000] = 1;
    assert.equal(decodeProbe(b), null, 'padding is zero (covered by the MAC, but strict anyway)');
    assert.equal(encodeProbe(req, 0, 10).length, PROBE_LEN, 'never shorter than the struct');
    assert.equal(decodeProbe(encodeProbe(req, 0).subarray(0, PROBE_LEN - 1)), null);
    assert.equal(decodeProbe(Buffer.concat([encodeProbe(req, 0), Buffer.alloc(PROBE_MAX_LEN)])), null);
  });

  it('an answer echoes seq, clock and reply_len, says the request length, and is padded to reply_len outer bytes', () => {
    const inReq = decodeProbe(encodeProbe({ ...req, replyLen: 1280, adminDown: true, budgetBytes: 4096, pmtuDown: 1300 }, 0, 200))!;
    const ov = udpOverhead(6);
    const r = answer(inReq, ov, 0);
    assert.equal(r.length + ov, 1280);
    const d = decodeProbe(r)!;
    assert.equal(d.reply, true);
    assert.deepEqual([d.probeSeq, d.sentNs, d.replyLen, d.reqLen], [9, 123n, 1280, 200 + ov]);
    assert.deepEqual([d.rateBps, d.owdUs, d.budgetBytes, d.adminDown, d.pmtuDown, d.pmtuUp, d.metric], [0n, 0, null, false, 0, 0, 0], 'request-only fields are zero');
    assert.equal(answer(decodeProbe(encodeProbe(req, 0))!, udpOverhead(4), 0).length, PROBE_LEN, 'reply_len 0: unpadded');
  });

  it('unknown flag bits are malformed (a later format is not read as this one)', () => {
    const b = encodeProbe(req, 0);
    b.writeUInt8(0x80, at('flags'));
    assert.equal(decodeProbe(b), null);
  });
});
