// The benchmarks' names, in the order `mpctl lab bench` (no names) runs them, and the cpu
// benchmark's parts: what `mpctl lab bench --help` lists and its arguments are checked against,
// without loading the benchmarks themselves (bench.ts's BENCHES and cpu.ts are the owners;
// test/bench-suite.test.ts fails when these drift from them).
export const BENCH_NAMES = [
  '2x20', '20+5', '2x10', '3x10', '4x10', 'mismatch', '300+80', 'lossy', 'discover', 'discover-demo', 'sat', 'lte', 'lossy2', 'cellular', 'starlink', 'flap',
  'udp90', 'lossyudp', 'step', 'cut', 'idle-death', 'redundant', 'emulator', 'datapath', 'auth', 'cpu',
] as const;

export const CPU_PARTS = ['idle3', 'idle16', 'bond20', 'bond100', 'bond400', 'plain20', 'plain100', 'plain400'] as const;
