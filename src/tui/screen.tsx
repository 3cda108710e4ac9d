// The console's frame: a pure render of a View (model.ts) and the UI state (selection, help,
// message) at a given terminal size. Every line is cut to the width and the frame never grows
// past the height, so Ink rewrites it in place (no scrolling, no flicker) at 4 updates/s.
import { Box, Text } from 'ink';
import type { LinkRow, RowState, View } from './model.js';
import { cell, fmtAge, fmtBps, fmtCount, fmtMs, fmtPct, sparkline } from './format.js';

export interface UiState {
  selected: number;
  help: boolean;
  /** a one-line note at the bottom (result of the last key, an error) */
  message: string | null;
  /** a yes/no question awaiting an answer (replaces the key line) */
  confirm: string | null;
}

export interface ScreenProps {
  view: View | null;
  ui: UiState;
  columns: number;
  rows: number;
}

const STATE_COLOR: Record<RowState, string> = { up: 'green', backup: 'yellow', spent: 'yellow', down: 'red', 'admin-down': 'magenta', unused: 'gray' };

interface Col {
  title: string;
  width: number;
  align: 'left' | 'right';
  value: (r: LinkRow) => string;
}

const COLS: Col[] = [
  { title: 'LINK', width: 10, align: 'left', value: (r) => r.label },
  { title: 'STATE', width: 10, align: 'left', value: (r) => r.state },
  { title: 'MET', width: 3, align: 'right', value: (r) => String(r.metric) },
  { title: 'RATE', width: 10, align: 'right', value: (r) => fmtBps(r.rateBps) },
  { title: 'RTT', width: 8, align: 'right', value: (r) => fmtMs(r.rttMs) },
  { title: 'LOSS', width: 6, align: 'right', value: (r) => fmtPct(r.lossPct) },
  { title: 'TX', width: 10, align: 'right', value: (r) => fmtBps(r.txBps) },
  { title: 'RX', width: 10, align: 'right', value: (r) => fmtBps(r.rxBps) },
];
const IFACE: Col = { title: 'DEV', width: 9, align: 'left', value: (r) => r.interface ?? '' };
const SEL = 2;

/** The columns that fit `width`: the interface column only on a wide terminal; the sparkline
 *  takes what is left (none below 6 columns). */
export function layout(width: number): { cols: Col[]; spark: number } {
  const used = (cs: Col[]) => SEL + cs.reduce((a, c) => a + c.width + 1, 0);
  let cols = COLS;
  if (used([COLS[0]!, IFACE, ...COLS.slice(1)]) + 10 <= width) cols = [COLS[0]!, IFACE, ...COLS.slice(1)];
  while (used(cols) > width && cols.length > 3) cols = cols.slice(0, -1);
  const left = width - used(cols) - 1;
  return { cols, spark: left >= 6 ? Math.min(left, 40) : 0 };
}

function Header({ v, columns }: { v: View; columns: number }) {
  const left = `mpctl ${v.instance} (${v.role === 'local' ? 'Local' : 'Remote'} Portal) · pid ${v.pid} · up ${fmtAge(v.uptimeMs)}`;
  return (
    <Box width={columns}>
      <Text bold wrap="truncate">
        {left}
      </Text>
      {!v.running && (
        <Text color="red" bold wrap="truncate">
          {' '}
          · CONTROL PLANE NOT RUNNING since {v.lastSeenMs === null ? 'its start' : new Date(v.lastSeenMs).toISOString().slice(11, 19)} · data path{' '}
          {v.forwarding ? `forwarding, ${v.packetsLastSecond} packets in the last second` : 'not forwarding'}
        </Text>
      )}
    </Box>
  );
}

function LinkTable({ v, ui, columns, maxRows }: { v: View; ui: UiState; columns: number; maxRows: number }) {
  const { cols, spark } = layout(columns);
  // keep the selected row visible when the terminal is shorter than the table
  const n = Math.max(1, maxRows);
  const first = Math.min(Math.max(0, ui.selected - n + 1), Math.max(0, v.rows.length - n));
  const shown = v.rows.slice(first, first + n);
  const peak = Math.max(1, ...v.rows.flatMap((r) => r.history));
  return (
    <Box flexDirection="column">
      <Text dimColor wrap="truncate">
        {' '.repeat(SEL)}
        {cols.map((c) => cell(c.title, c.width, c.align)).join(' ')}
        {spark ? ` ${cell('TX+RX', spark)}` : ''}
      </Text>
      {shown.map((r) => {
        const sel = v.rows[ui.selected]?.id === r.id;
        return (
          <Text key={r.id} wrap="truncate" inverse={sel}>
            {sel ? '▸ ' : '  '}
            {cols.map((c, i) => {
              const text = cell(c.value(r), c.width, c.align);
              return c.title === 'STATE' ? (
                <Text key={c.title} color={STATE_COLOR[r.state]}>
                  {(i ? ' ' : '') + text}
                </Text>
              ) : (
                (i ? ' ' : '') + text
              );
            })}
            {spark ? <Text color="cyan">{` ${sparkline(r.history, spark, peak)}`}</Text> : ''}
          </Text>
        );
      })}
      {v.rows.length > shown.length && <Text dimColor>{`  … ${v.rows.length - shown.length} more (↑/↓)`}</Text>}
      {v.rows.length === 0 && <Text dimColor>  no links yet{v.role === 'remote' ? ' (the RP learns links from the LP’s probes)' : ''}</Text>}
    </Box>
  );
}

function Totals({ v }: { v: View }) {
  const t = v.totals;
  const share = t.txBps !== null && t.usableBps > 0 ? ` (${Math.round((100 * t.txBps) / t.usableBps)} %)` : '';
  return (
    <Text wrap="truncate">
      <Text bold>total</Text> tx {fmtBps(t.txBps)} · rx {fmtBps(t.rxBps)} · links in use {fmtBps(t.usableBps)}
      {share}
      {t.allBps !== t.usableBps ? ` · all links ${fmtBps(t.allBps)}` : ''}
    </Text>
  );
}

function Session({ v }: { v: View }) {
  const s = v.session;
  if (!s) return <Text dimColor wrap="truncate">session: not published by this portal</Text>;
  const rejected = Object.entries(s.rejected).filter(([, n]) => n > 0);
  return (
    <Text wrap="truncate">
      <Text bold>session</Text> {s.mode}
      {s.peer ? ` · peer ${s.peer}` : ''}
      {s.keyId === null ? ' · no key' : ` · key ${s.keyId}`}
      {s.sessionAgeMs === null ? '' : ` · age ${fmtAge(s.sessionAgeMs)}`}
      {s.lastHandshakeAtMs === null ? '' : ` · last handshake ${fmtAge(Date.now() - s.lastHandshakeAtMs)} ago`}
      {` · ${s.handshakes} handshakes · ${s.rekeys} rekeys`}
      {rejected.length ? ` · rejected ${rejected.map(([k, n]) => `${k} ${fmtCount(n)}`).join(', ')}` : ''}
    </Text>
  );
}

function Drops({ v }: { v: View }) {
  if (!v.drops.length) return <Text wrap="truncate"><Text bold>drops</Text> none</Text>;
  return (
    <Text wrap="truncate">
      <Text bold>drops</Text>
      {v.drops.map((d) => (
        <Text key={d.reason} color={d.delta > 0 ? 'red' : undefined}>
          {` ${d.reason} ${fmtCount(d.count)}${d.delta > 0 ? ` (+${fmtCount(d.delta)})` : ''}`}
        </Text>
      ))}
    </Text>
  );
}

function Redundant({ v }: { v: View }) {
  return (
    <>
      {v.redundant.map((line, i) => (
        <Text key={i} wrap="truncate">
          <Text bold>redundant</Text> {line}
        </Text>
      ))}
    </>
  );
}

export const HELP_LINES = [
  'Keys',
  '  ↑/↓, k/j     select a link',
  '  a            take the selected link administratively down, or bring it back',
  '  d            detach: leave the portal running in the background',
  '               (mpctl attach -i <instance> comes back, mpctl down -i <instance> stops it)',
  '  q, Ctrl-C    stop the portal (tear down everything up made) and exit',
  '  ?, Esc       close this help',
  '',
  'States',
  '  up           carries traffic',
  '  backup       up but idle: a link with a lower metric is up',
  '  spent        up, but its byte budget for this period is used up',
  '  down         no probe answered for 3 probe intervals',
  '  admin-down   taken down with `a`',
  '',
  'RATE is the congestion controller’s estimate; TX/RX are measured between updates.',
];

function Help() {
  return (
    <Box flexDirection="column" borderStyle="round" paddingX={1}>
      {HELP_LINES.map((l, i) => (
        <Text key={i} bold={i === 0 || l === 'States'} wrap="truncate">
          {l || ' '}
        </Text>
      ))}
    </Box>
  );
}

function Footer({ ui }: { ui: UiState }) {
  if (ui.confirm) return <Text color="yellow" bold wrap="truncate">{ui.confirm} [y/N]</Text>;
  return (
    <Text wrap="truncate">
      {ui.message ? <Text color="yellow">{ui.message} </Text> : ''}
      <Text dimColor>? help · a admin down/up · d detach · q quit</Text>
    </Text>
  );
}

/** Lines the frame uses besides the link rows: header, column titles, totals, session, drops, footer. */
const CHROME = 6;

export function Screen({ view, ui, columns, rows }: ScreenProps) {
  if (!view)
    return (
      <Box flexDirection="column" width={columns}>
        <Text>waiting for the portal’s first status…</Text>
        <Footer ui={ui} />
      </Box>
    );
  return (
    <Box flexDirection="column" width={columns}>
      <Header v={view} columns={columns} />
      {ui.help ? <Help /> : <LinkTable v={view} ui={ui} columns={columns} maxRows={rows - CHROME - 1 - view.redundant.length} />}
      {!ui.help && <Totals v={view} />}
      {!ui.help && <Session v={view} />}
      {!ui.help && <Drops v={view} />}
      {!ui.help && <Redundant v={view} />}
      <Footer ui={ui} />
    </Box>
  );
}
