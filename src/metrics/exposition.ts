// A portal's status (src/run/status.ts) as Prometheus metrics, in the text exposition format
// (version 0.0.4): `# HELP`, `# TYPE`, then samples. Pure: status → text. Names follow the
// Prometheus conventions: `mpctl_` prefix, base units (bytes, seconds, bits per second),
// `_total` on counters, labels `link` (the config's name, or the id on the RP) and `link_id`.
import type { LinkStatus, PortalStatus } from '../run/status.js';

type Kind = 'gauge' | 'counter';
interface Family {
  name: string;
  help: string;
  type: Kind;
  samples: { labels: Record<string, string>; value: number }[];
}

const escape = (v: string) => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');

function fmtValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

export function render(families: Family[]): string {
  const out: string[] = [];
  for (const f of families) {
    out.push(`# HELP ${f.name} ${f.help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}`, `# TYPE ${f.name} ${f.type}`);
    for (const s of f.samples) {
      const l = Object.entries(s.labels);
      out.push(`${f.name}${l.length ? `{${l.map(([k, v]) => `${k}="${escape(v)}"`).join(',')}}` : ''} ${fmtValue(s.value)}`);
    }
  }
  return `${out.join('\n')}\n`;
}

const linkLabels = (l: LinkStatus) => ({ link: l.name ?? String(l.id), link_id: String(l.id) });

export function portalMetrics(s: PortalStatus): Family[] {
  const fam = (name: string, type: Kind, help: string, samples: Family['samples']): Family => ({ name, type, help, samples });
  const perLink = (name: string, type: Kind, help: string, value: (l: LinkStatus) => number | null): Family =>
    fam(name, type, help, s.links.flatMap((l) => {
      const v = value(l);
      return v === null ? [] : [{ labels: linkLabels(l), value: v }];
    }));
  const one = (value: number, labels: Record<string, string> = {}) => [{ labels, value }];
  const sec = s.security;
  const families: Family[] = [
    fam('mpctl_portal_info', 'gauge', 'The portal: instance, role and process (always 1).', one(1, { instance: s.instance, role: s.role, pid: String(s.pid) })),
    fam('mpctl_portal_start_time_seconds', 'gauge', 'When the portal was brought up, seconds since the epoch.', one(Date.parse(s.startedAt) / 1000)),
    perLink('mpctl_link_up', 'gauge', 'Whether the link is up (1) — probes answered and not administratively down.', (l) => (l.state === 'up' ? 1 : 0)),
    perLink('mpctl_link_admin_down', 'gauge', 'Whether the link was taken down administratively (mpctl link <l> down, or a in the console).', (l) => (l.state === 'admin-down' ? 1 : 0)),
    perLink('mpctl_link_metric', 'gauge', 'The link metric (lower is preferred; higher tiers carry traffic only while no lower tier is up).', (l) => l.metric),
    perLink('mpctl_link_rate_bps', 'gauge', "The scheduler's pacing rate for this portal's sending direction, bits per second.", (l) => l.rateBps),
    perLink('mpctl_link_bandwidth_estimate_bps', 'gauge', "The congestion controller's bandwidth estimate, bits per second.", (l) => l.cc?.bwBps ?? null),
    perLink('mpctl_link_shape_queue_bytes', 'gauge', "Bytes waiting in a shaping link's htb class queue (as the control plane last read it).", (l) => l.shapeQueue?.bytes ?? null),
    perLink('mpctl_link_shape_drops_total', 'counter', "Packets a shaping link's class queue dropped because it was full.", (l) => l.shapeQueue?.drops ?? null),
    perLink('mpctl_link_shape_rate_bps', 'gauge', "shape = true or \"auto\": the rate of a shaping link's htb class, bits per second of Ethernet frames.", (l) => l.shapeBps ?? null),
    perLink('mpctl_link_one_way_delay_seconds', 'gauge', "The scheduler's one-way delay estimate, seconds.", (l) => l.owdUs / 1e6),
    perLink('mpctl_link_rtt_seconds', 'gauge', 'Round trip time of the last answered probe, seconds.', (l) => (l.rttMs === null ? null : l.rttMs / 1000)),
    perLink('mpctl_link_loss_ratio', 'gauge', 'Packet loss the congestion controller sees, 0 to 1.', (l) => (l.cc ? l.cc.lossPct / 100 : null)),
    perLink('mpctl_link_buffer_depth_seconds', 'gauge', "The link's buffer depth the congestion controller learned from a loss under a standing queue (no series until one).", (l) => (typeof l.cc?.depthMs === 'number' ? l.cc.depthMs / 1000 : null)),
    perLink('mpctl_link_random_loss_ratio', 'gauge', "Loss the link shows without a queue (the congestion controller's random-loss estimate), 0 to 1.", (l) => (l.cc?.randomLossPct === undefined ? null : l.cc.randomLossPct / 100)),
    perLink('mpctl_link_jitter_seconds', 'gauge', 'One-way delay jitter the congestion controller sees, averaged over about 10 s.', (l) => (l.cc?.jitterMs === undefined ? null : l.cc.jitterMs / 1000)),
    perLink('mpctl_link_tx_bytes_total', 'counter', 'Bytes sent on the link (outer packets).', (l) => l.tx.bytes),
    perLink('mpctl_link_rx_bytes_total', 'counter', 'Bytes received on the link (outer packets).', (l) => l.rx.bytes),
    perLink('mpctl_link_tx_packets_total', 'counter', 'Packets sent on the link.', (l) => l.tx.packets),
    perLink('mpctl_link_rx_packets_total', 'counter', 'Packets received on the link.', (l) => l.rx.packets),
    perLink('mpctl_link_path_mtu_bytes', 'gauge', "The largest outer IP packet this portal's scheduler puts on the link (path MTU discovery).", (l) => l.pmtu?.mtu ?? null),
    perLink('mpctl_link_path_mtu_probed', 'gauge', 'Whether size probes confirmed the path MTU (1) or the interface MTU is assumed (0).', (l) => (l.pmtu ? (l.pmtu.source === 'probed' ? 1 : 0) : null)),
    perLink('mpctl_link_path_mtu_shrinks_total', 'counter', 'Times size-dependent loss (large probes lost, small ones answered) made the LP search below the path MTU.', (l) => l.pmtu?.shrinks ?? null),
    perLink('mpctl_link_probes_sent_total', 'counter', 'Liveness probes sent on the link.', (l) => l.probesSent),
    perLink('mpctl_link_budget_limit_bytes', 'gauge', "A metered link's byte budget per period (config budget).", (l) => l.budget?.limitBytes ?? null),
    perLink('mpctl_link_budget_remaining_bytes', 'gauge', 'Bytes this portal may still send on a metered link this period before the scheduler skips it.', (l) => l.budget?.leftBytes ?? null),
    perLink('mpctl_link_budget_used_bytes', 'gauge', "LP: bytes counted against a metered link's budget this period, both directions, earlier runs included.", (l) => l.budget?.usedBytes ?? null),
    perLink('mpctl_link_probes_heard_total', 'counter', 'Liveness probes answered (LP) or received (RP) on the link.', (l) => l.probesHeard),
    fam('mpctl_drops_total', 'counter', 'Packets the portal dropped, by reason: the data path\'s (bpf/mp.h), and shape_queue (its shaping queues full).', Object.entries(s.drops).map(([reason, v]) => ({ labels: { reason }, value: v }))),
    fam('mpctl_segmentation_loop_packets_total', 'counter', 'The segmentation loop: GSO and too-big packets sent round it, pieces carried after it.', [
      { labels: { kind: 'gso' }, value: s.loop.gso },
      { labels: { kind: 'frag' }, value: s.loop.frag },
      { labels: { kind: 'back' }, value: s.loop.back },
    ]),
    fam('mpctl_feedback_messages_total', 'counter', 'Congestion-control feedback messages, by event.', s.feedback
      ? [
          { labels: { event: 'sent' }, value: s.feedback.fbSent },
          { labels: { event: 'taken' }, value: s.feedback.fbHeard },
          { labels: { event: 'duplicate' }, value: s.feedback.fbDup },
          { labels: { event: 'malformed' }, value: s.feedback.fbBad },
        ]
      : []),
    fam('mpctl_bad_control_messages_total', 'counter', 'Malformed or unexpected control messages.', one(s.badControl)),
  ];
  const red = s.redundant ?? [];
  if (red.length) {
    const linkName = (id: string) => s.links.find((l) => String(l.id) === id)?.name ?? id;
    const cls = (r: (typeof red)[number]) => ({ class: r.name ?? String(r.id), class_id: String(r.id) });
    const perClass = (name: string, help: string, v: (r: (typeof red)[number]) => number) =>
      fam(name, 'counter', help, red.map((r) => ({ labels: cls(r), value: v(r) })));
    families.push(
      perClass('mpctl_redundant_packets_total', 'Packets of the redundant class this portal sent.', (r) => r.packets),
      perClass('mpctl_redundant_copies_total', 'Copies of the class\'s packets sent on further links.', (r) => r.copies),
      perClass('mpctl_redundant_copy_bytes_total', 'Outer IP bytes of those copies (what the cap limits).', (r) => r.copyBytes),
      fam('mpctl_redundant_uncopied_total', 'counter', 'Packets of the class sent without copies, by why: capped (over the class cap), single (one usable link), failed (copies that could not be sent).', red.flatMap((r) => [
        { labels: { ...cls(r), reason: 'capped' }, value: r.capped },
        { labels: { ...cls(r), reason: 'single' }, value: r.single },
        { labels: { ...cls(r), reason: 'failed' }, value: r.copyFailed },
      ])),
      fam('mpctl_redundant_first_copy_total', 'counter', "The peer's redundant packets received, by the link their first copy came on.", red.flatMap((r) => Object.entries(r.wins).map(([l, n]) => ({ labels: { ...cls(r), link_id: l, link: linkName(l) }, value: n })))),
      perClass('mpctl_redundant_duplicates_total', "Later copies of the peer's redundant packets, dropped.", (r) => r.duplicates),
    );
  }
  if (s.nat) {
    const n = s.nat;
    families.push(
      fam('mpctl_nat_mappings', 'gauge', 'Whole-LAN mode: live NAT mappings (one per LAN flow), by protocol.', [
        { labels: { proto: 'tcp' }, value: n.tcp },
        { labels: { proto: 'udp' }, value: n.udp },
        { labels: { proto: 'icmp' }, value: n.icmp },
      ]),
      fam('mpctl_nat_expired_mappings', 'gauge', 'Whole-LAN mode: mappings idle past their timeout (their ports are free), deleted at the next sweep.', one(n.expired)),
    );
  }
  if (sec) {
    families.push(
      fam('mpctl_authenticated', 'gauge', 'Whether the tunnel is authenticated (0: insecure_no_auth).', one(sec.mode === 'authenticated' ? 1 : 0)),
      fam('mpctl_session_established', 'gauge', 'Whether a session key is installed (data can flow).', one(sec.keyId === null ? 0 : 1)),
      fam('mpctl_session_age_seconds', 'gauge', 'Age of the current session, seconds.', sec.sessionAgeMs === null ? [] : one(sec.sessionAgeMs / 1000)),
      fam('mpctl_last_handshake_timestamp_seconds', 'gauge', 'When the last handshake completed, seconds since the epoch.', sec.lastHandshakeAtMs === null ? [] : one(sec.lastHandshakeAtMs / 1000)),
      fam('mpctl_handshakes_total', 'counter', 'Completed handshakes.', one(sec.handshakes)),
      fam('mpctl_rekeys_total', 'counter', 'Handshakes that replaced a live session.', one(sec.rekeys)),
      fam('mpctl_handshake_messages_total', 'counter', 'Handshake messages, by type and direction.', [
        { labels: { type: 'initiation', direction: 'sent' }, value: sec.initiationsSent },
        { labels: { type: 'initiation', direction: 'received' }, value: sec.initiationsReceived },
        { labels: { type: 'response', direction: 'sent' }, value: sec.responsesSent },
        { labels: { type: 'cookie', direction: 'sent' }, value: sec.cookiesSent },
      ]),
      fam('mpctl_rejected_messages_total', 'counter', 'Refused handshake and control messages, by reason.', Object.entries(sec.rejected).map(([reason, v]) => ({ labels: { reason }, value: v }))),
    );
  }
  return families;
}

export const exposition = (s: PortalStatus): string => render(portalMetrics(s));
