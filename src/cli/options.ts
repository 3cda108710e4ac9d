// Options several commands share, typed and checked where they are parsed: a bad value is a
// one-line usage error (exit 2) before any handler runs.
import type { Argv } from 'yargs';
import { INSTANCE_RULE, isInstanceName } from '../config/instance.js';

/** `--instance/-i`: a portal's instance name, checked as the config's `instance` key is. */
export const instanceOption = <T>(y: Argv<T>, required: boolean) =>
  y
    .option('instance', {
      alias: 'i',
      type: 'string',
      ...(required ? { demandOption: true } : {}),
      describe: 'instance name (a config\'s `instance`, default its role: local or remote)',
    })
    .check((a) => a.instance === undefined || isInstanceName(a.instance) || `--instance ${INSTANCE_RULE} (got "${String(a.instance)}")`);

/** A check that `name`, when given, is an integer from `lo` to `hi`. */
export const integerIn =
  (name: string, lo: number, hi: number) =>
  (a: Record<string, unknown>): true | string => {
    const v = a[name];
    return v === undefined || (typeof v === 'number' && Number.isInteger(v) && v >= lo && v <= hi) || `--${name} must be an integer from ${lo} to ${hi}`;
  };

/** A check that `name` is a number above 0 and at most `hi`. */
export const positiveUpTo =
  (name: string, hi: number) =>
  (a: Record<string, unknown>): true | string => {
    const v = a[name];
    return v === undefined || (typeof v === 'number' && v > 0 && v <= hi) || `--${name} must be a number above 0 and at most ${hi}`;
  };
