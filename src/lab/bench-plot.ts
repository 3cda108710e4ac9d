// Benchmark plots: throughput over time, per link and total, one panel per direction, rendered
// to SVG headless with vega-lite → vega (no browser, no canvas). Events (a link cut, a rate
// step) are drawn as labelled vertical rules.
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';

export interface PlotPanel {
  /** e.g. "client → server" */
  title: string;
  /** one row per bin and series ("link 1", …, "total") */
  points: { tS: number; series: string; mbit: number }[];
  events: { tS: number; label: string }[];
  /** the sum of the link rates (a dashed reference line), Mbit/s */
  sumMbit?: number;
}

export function plotSpec(title: string, panels: readonly PlotPanel[]): TopLevelSpec {
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
  } as TopLevelSpec;
}

/** The SVG of a plot (vega's headless renderer). */
export async function renderPlot(title: string, panels: readonly PlotPanel[]): Promise<string> {
  const view = new vega.View(vega.parse(compile(plotSpec(title, panels)).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}
