// The replay window of bpf/mp.h (struct mp_replay, WireGuard's noise_replay_counter) in
// userland: the portal checks the control messages it takes (probes, feedback) against one
// window per key id, as decap does in the kernel — defense in depth, and the only check while
// the data path runs without authentication in BPF.
//
// A seq is accepted once if it is new and top − seq < REPLAY_WINDOW (top: the highest accepted).
// The first seq accepted after reset sets top: no clock or counter is shared between portals.

import { MP_REPLAY_WINDOW } from '../datapath/abi.js';

/** The data path's window (mp.h MP_REPLAY_WINDOW): userland accepts exactly what decap does. */
export const REPLAY_WINDOW = MP_REPLAY_WINDOW;

export class ReplayWindow {
  private top = 0;
  private any = false;
  private readonly seen = new Uint8Array(REPLAY_WINDOW);

  /** Whether `seq` (u32) is fresh; if so it is recorded. */
  accept(seq: number): boolean {
    seq >>>= 0;
    if (!this.any || seq > this.top) {
      const from = this.any ? this.top + 1 : seq;
      if (!this.any || seq - from >= REPLAY_WINDOW) this.seen.fill(0);
      else for (let s = from; s < seq; s++) this.seen[s % REPLAY_WINDOW] = 0;
      this.any = true;
      this.top = seq;
      this.seen[seq % REPLAY_WINDOW] = 1;
      return true;
    }
    if (this.top - seq >= REPLAY_WINDOW || this.seen[seq % REPLAY_WINDOW]) return false;
    this.seen[seq % REPLAY_WINDOW] = 1;
    return true;
  }
}
