// What `mpctl config check` does (its options: config.ts, which loads this module when it runs).
import { describeRedundant } from '../../config/redundant.js';
import type { Arguments } from 'yargs';
import { err, ok } from 'neverthrow';
import { loadConfig } from '../../config/parse.js';
import type { LinkConfig, PortalConfig } from '../../config/types.js';
import { loadStaticKeys } from '../../security/auth.js';
import { fmtBps, fmtMs } from '../../tui/format.js';
import type { Result } from 'neverthrow';
import type { MpError } from '../../errors.js';

const LIVENESS_MISSED = 3;

function linkLine(l: LinkConfig): string {
  return [
    `    ${l.id} ${l.name.padEnd(10)} ${l.interface.padEnd(10)} IPv${l.family} ${l.carrier.padEnd(3)}`,
    `metric ${l.metric}`,
    l.gateway ? `via ${l.gateway}` : 'point-to-point',
    l.source ? `from ${l.source}` : 'from the interface address',
    `rate ${fmtBps(l.rateBps)}`,
    `delay ${fmtMs(l.delayUs / 1000)}`,
    l.budgetBytes ? `budget ${(l.budgetBytes / 1e9).toFixed(l.budgetBytes >= 1e10 ? 0 : 1)} GB` : '',
  ]
    .filter(Boolean)
    .join('  ');
}

export function configSummary(file: string, c: PortalConfig, publicKey: string | null): string {
  const lines = [
    `${file}: valid — ${c.role === 'local' ? 'Local' : 'Remote'} Portal "${c.instance}", tunnel port ${c.port}`,
    `  client      ${c.client.map((p) => `${p.address}/${p.len}`).join(', ')}`,
  ];
  if (c.role === 'local') {
    lines.push(`  lan         ${c.lan} (answers for the client's gateway ${c.gateway.join(', ')})`, `  remote      ${c.remote.join(', ')}`);
  } else {
    lines.push(
      `  wan         ${c.wan}${c.forward.length ? ` (and forwards from ${c.forward.join(', ')})` : ''}`,
      ...(c.singleInterface ? [`  single      the client shares this host's address; stays here: the tunnel port${c.reservedPorts.length ? `, ${c.reservedPorts.join(', ')}` : ''}`] : []),
    );
  }
  const a = c.auth;
  lines.push(
    a.mode === 'authenticated'
      ? `  keys        ${a.privateKeyFile}${publicKey ? ` (public key ${publicKey}: the peer's peer_public_key)` : ' (not read: --skip-keys)'}; peer ${a.peerPublicKey}`
      : '  keys        NONE: insecure_no_auth = true (no handshake, no MAC, no replay check; benchmarks only)',
    `  probes      every ${c.probeIntervalMs} ms; a link is down after ${c.probeIntervalMs * LIVENESS_MISSED} ms without an answer`,
    `  metrics     ${c.metricsListen ? `http://${c.metricsListen.host.includes(':') ? `[${c.metricsListen.host}]` : c.metricsListen.host}:${c.metricsListen.port}/metrics` : 'off'}`,
  );
  if (c.role === 'local') {
    lines.push(`  links (${c.links.length}):`, ...c.links.map(linkLine));
    const best = Math.min(...c.links.map((l) => l.metric));
    const backup = c.links.filter((l) => l.metric > best);
    if (backup.length) lines.push(`  backup: ${backup.map((l) => l.name).join(', ')} carr${backup.length > 1 ? 'y' : 'ies'} traffic only while every metric-${best} link is down`);
  }
  for (const r of c.redundant) lines.push(`  ${describeRedundant(r)}`);
  return lines.join('\n');
}


export async function runConfigCheck(a: Arguments): Promise<Result<number, MpError>> {
  const file = a.file as string;
  const cfg = await loadConfig(file);
  if (cfg.isErr()) return err(cfg.error);
  let publicKey: string | null = null;
  if (!a.skipKeys) {
    const keys = await loadStaticKeys(cfg.value);
    if (keys.isErr()) return err(keys.error);
    publicKey = keys.value?.publicB64 ?? null;
  }
  console.log(configSummary(file, cfg.value, publicKey));
  return ok(0);
}
