// Benchmark plots: throughput over time, per link and total, one panel per direction, rendered
// to SVG headless with vega-lite → vega (no browser, no canvas). Events (a link cut, a rate
// step) are drawn as labelled vertical rules.
//
// vega and vega-lite (11.5 MB, 51 packages) are optional dependencies, loaded only here, when a
// plot is drawn: every other command (`mpctl status`, the systemd `up`) starts without them, and
// a portal host can install with `npm ci --omit=optional`. The specifiers are variables so the
// build does not need them either; the few calls made are typed below.
import { err, ok, type Result } from 'neverthrow';
import type { MpError } from '../../errors.js';

/** A vega-lite spec (vega-lite's TopLevelSpec, as plain data). */
export type PlotSpec = Record<string, unknown>;

interface Vega {
  View: new (runtime: unknown, o: { renderer: 'none' }) => { toSVG(): Promise<string>; finalize(): void };
  parse(spec: unknown): unknown;
}
interface VegaLite {
  compile(spec: PlotSpec): { spec: unknown };
}
const VEGA = 'vega';
const VEGA_LITE = 'vega-lite';

export interface PlotPanel {
  /** e.g. "client → server" */
  title: string;
  /** one row per bin and series ("link 1", …, "total") */
  points: { tS: number; series: string; mbit: number }[];
  events: { tS: number; label: string }[];
  /** the sum of the link rates (a dashed reference line), Mbit/s */
  sumMbit?: number;
}

export function plotSpec(title: string, panels: readonly PlotPanel[]): PlotSpec {
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: title, fontSize: 14 },
    background: 'white',
    vconcat: panels.map((p) => ({
      title: p.title,
      width: 720,
      height: 220,
      layer: [
        {
          data: { values: p.points },
          mark: { type: 'line', interpolate: 'step-after', strokeWidth: 1.4 },
          encoding: {
            x: { field: 'tS', type: 'quantitative', title: 'time (s)' },
            y: { field: 'mbit', type: 'quantitative', title: 'Mbit/s (outer IP bytes delivered)' },
            color: { field: 'series', type: 'nominal', title: null, sort: 'ascending' },
          },
        },
        ...(p.sumMbit !== undefined
          ? [
              {
                data: { values: [{ y: p.sumMbit, label: `sum of link rates ${p.sumMbit} Mbit/s` }] },
                mark: { type: 'rule' as const, strokeDash: [6, 4], color: 'grey' },
                encoding: { y: { field: 'y', type: 'quantitative' as const } },
              },
            ]
          : []),
        ...(p.events.length
          ? [
              {
                data: { values: p.events },
                layer: [
                  { mark: { type: 'rule' as const, color: 'black', strokeDash: [2, 2] }, encoding: { x: { field: 'tS', type: 'quantitative' as const } } },
                  {
                    mark: { type: 'text' as const, align: 'left' as const, baseline: 'top' as const, dx: 3, dy: 3, fontSize: 10 },
                    encoding: { x: { field: 'tS', type: 'quantitative' as const }, y: { value: 0 }, text: { field: 'label', type: 'nominal' as const } },
                  },
                ],
              },
            ]
          : []),
      ],
    })),
  };
}

/** The SVG of a plot (vega's headless renderer); NotFound when the optional packages are absent. */
export async function renderPlot(title: string, panels: readonly PlotPanel[]): Promise<Result<string, MpError>> {
  let vega: Vega;
  let vl: VegaLite;
  try {
    vega = (await import(VEGA)) as Vega;
    vl = (await import(VEGA_LITE)) as VegaLite;
  } catch {
    return err({ kind: 'NotFound', what: 'vega', message: 'plots need the optional packages vega and vega-lite (npm install --include=optional)' });
  }
  const view = new vega.View(vega.parse(vl.compile(plotSpec(title, panels)).spec), { renderer: 'none' });
  try {
    return ok(await view.toSVG());
  } finally {
    view.finalize();
  }
}
