// A lab measurement that misses its bound is taken once more (both figures in the diagnostics):
// this shared 2-CPU machine has bursts of steal and of neighbours' work (~10 % steal measured
// during lab tests) that take a few-second flow below a bound it clears in every other run. A
// property that is really lost misses twice; the test fails with both figures.

/**
 * `measure()`, and when `pass` rejects it, `measure()` again: the first figure that passes, else
 * the second. `show` prints a figure for the diagnostic. `taken`: the first figure, already
 * measured (with others at once); only the second is measured here.
 */
export async function measuredAgain<T>(
  note: (line: string) => void,
  what: string,
  measure: () => Promise<T>,
  pass: (x: T) => boolean,
  show: (x: T) => string,
  taken?: T,
): Promise<T> {
  const first = taken ?? (await measure());
  if (pass(first)) return first;
  note(`${what}: ${show(first)} missed the bound: measured again`);
  const second = await measure();
  note(`${what} again: ${show(second)}`);
  return second;
}
