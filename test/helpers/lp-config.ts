// The LP's mp_config that the PROG_TEST_RUN packet tables start from: test/datapath.test.ts uses it
// as it is; test/datapath-nat.test.ts (whole-LAN mode), test/schedule.test.ts,
// test/redundant.test.ts and test/decap-fuzz.test.ts override what they test. One literal, so that
// the tables cannot drift apart on what they share (a new mp_config field is added here, once).

import { MP_ROLE_LOCAL, type MpConfig } from '../../src/datapath/abi.js';

/** the RP's (and the tunnel's) UDP port */
export const RP_PORT = 5555;
/** the IP protocol number of the IP carrier */
export const IP_PROTO = 253;

export const LP_CONFIG: MpConfig = {
  role: MP_ROLE_LOCAL,
  flags: 0,
  lanIfindex: 1,
  wanIfindex: 0,
  port: RP_PORT,
  mssV4: 1360,
  mssV6: 1340,
  innerMtu: 1400,
  ipProto: IP_PROTO,
  clientV4: { family: 4, prefixLen: 24, addr: '10.9.0.0' },
  clientV6: { family: 6, prefixLen: 64, addr: '2001:db8:9::' },
  reservedPorts: [],
  loopIfindex: 0,
  loopMark: 0,
};
