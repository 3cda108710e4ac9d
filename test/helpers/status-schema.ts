// The documented `mpctl status --json` schema (docs/status.schema.json), compiled once.
import { readFileSync } from 'node:fs';
import { Ajv } from 'ajv';

export const statusSchema = JSON.parse(readFileSync(new URL('../../docs/status.schema.json', import.meta.url), 'utf8')) as object;
export const validateStatus = new Ajv({ strict: true, allErrors: true }).compile(statusSchema);
