// What the running portal tells the TUI and `mpctl status` about its keys and handshakes.
// Times in ms; `lastHandshakeAtMs` on the Date.now() clock.

export interface SecurityStatus {
  mode: 'authenticated' | 'insecure-no-auth';
  /** the peer's static public key, base64 ('' with insecure_no_auth) */
  peer: string;
  /** the key id this portal sends with (null: no session, nothing is sent) */
  keyId: number | null;
  sessionAgeMs: number | null;
  lastHandshakeAtMs: number | null /* Date.now() clock */;
  /** completed handshakes (LP: responses taken; RP: initiations accepted) */
  handshakes: number;
  /** handshakes that replaced a live session */
  rekeys: number;
  initiationsSent: number;
  initiationsReceived: number;
  responsesSent: number;
  cookiesSent: number;
  /** refused messages by HandshakeErrorKind, or for control messages 'bad_mac' / 'replay' /
   * 'no_key' (a key id this portal does not hold) */
  rejected: Record<string, number>;
}
