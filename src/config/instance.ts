// A portal's instance name: what names its pins, state and log (config key `instance`, and
// `--instance` of the commands that ask a running portal, checked before anything is loaded).
const INSTANCE_RE = /^[a-z0-9][a-z0-9_-]{0,15}$/;
export const INSTANCE_RULE = 'must be 1-16 lower-case letters, digits, "_" or "-", starting with a letter or digit';
export const isInstanceName = (v: unknown): v is string => typeof v === 'string' && INSTANCE_RE.test(v);
