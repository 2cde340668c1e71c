/** docs/api.md keeps up with the code: every route, control error code, status and metric is documented. */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONTROL_ERROR_STATUS, METRIC_NAMES } from '../../../src/api';
import { harness, type Harness } from './harness';

const doc = readFileSync(path.join(__dirname, '../../../docs/api.md'), 'utf8');
let h: Harness;
let paths: Record<string, Record<string, unknown>>;

beforeAll(async () => {
  h = await harness();
  paths = (await h.app.inject({ method: 'GET', url: '/api/v1/openapi.json' })).json<{ paths: typeof paths }>().paths;
});
afterAll(async () => {
  await h.close();
});

describe('docs/api.md', () => {
  it('documents every route of the OpenAPI document', () => {
    for (const [p, ops] of Object.entries(paths)) {
      for (const method of Object.keys(ops)) expect(doc, `${method} ${p}`).toContain(`\`${method.toUpperCase()} ${p}\``);
    }
  });

  it('documents every control error code with its status', () => {
    for (const [code, status] of Object.entries(CONTROL_ERROR_STATUS)) {
      const row = doc.split('\n').find((line) => line.startsWith(`| ${status} |`));
      expect(row, `${code} → ${status}`).toContain(`\`${code}\``);
    }
  });

  it('documents every metric', () => {
    for (const name of Object.values(METRIC_NAMES)) expect(doc).toContain(`| \`${name}\` |`);
  });
});
