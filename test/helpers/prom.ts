// A strict reader of the Prometheus text exposition format (0.0.4) for tests: every sample's
// family has HELP and TYPE lines before it, names and labels are well-formed, values are
// numbers, counters end in _total, no family or series appears twice.
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}
export interface Parsed {
  types: Map<string, string>;
  help: Map<string, string>;
  samples: Sample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;

export function parseExposition(text: string): Parsed {
  const types = new Map<string, string>();
  const help = new Map<string, string>();
  const samples: Sample[] = [];
  const seen = new Set<string>();
  if (!text.endsWith('\n')) throw new Error('the exposition must end with a newline');
  for (const [i, line] of text.slice(0, -1).split('\n').entries()) {
    const at = `line ${i + 1} "${line}"`;
    let m: RegExpExecArray | null;
    if ((m = /^# HELP (\S+) (.*)$/.exec(line))) {
      if (help.has(m[1]!)) throw new Error(`${at}: second HELP`);
      help.set(m[1]!, m[2]!);
    } else if ((m = /^# TYPE (\S+) (counter|gauge|histogram|summary|untyped)$/.exec(line))) {
      if (types.has(m[1]!)) throw new Error(`${at}: second TYPE`);
      if (!help.has(m[1]!)) throw new Error(`${at}: TYPE before HELP`);
      if (m[2] === 'counter' && !m[1]!.endsWith('_total')) throw new Error(`${at}: a counter's name ends in _total`);
      types.set(m[1]!, m[2]!);
    } else if ((m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line))) {
      const [, name, rawLabels, rawValue] = m;
      if (!types.has(name!)) throw new Error(`${at}: sample without TYPE`);
      const labels: Record<string, string> = {};
      let rest = rawLabels ?? '';
      while (rest) {
        const l = /^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)/.exec(rest);
        if (!l) throw new Error(`${at}: bad labels`);
        labels[l[1]!] = l[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
        rest = rest.slice(l[0].length);
      }
      const value = rawValue === '+Inf' ? Infinity : rawValue === '-Inf' ? -Infinity : Number(rawValue);
      if (rawValue !== 'NaN' && Number.isNaN(value)) throw new Error(`${at}: value is not a number`);
      const key = `${name}${JSON.stringify(labels)}`;
      if (seen.has(key)) throw new Error(`${at}: the series appears twice`);
      seen.add(key);
      samples.push({ name: name!, labels, value });
    } else if (line !== '') throw new Error(`${at}: not a HELP, TYPE or sample line`);
  }
  for (const n of types.keys()) if (!NAME.test(n)) throw new Error(`bad name ${n}`);
  return { types, help, samples };
}

/** The value of one series (undefined when absent). */
export const valueOf = (p: Parsed, name: string, labels: Record<string, string> = {}): number | undefined =>
  p.samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
