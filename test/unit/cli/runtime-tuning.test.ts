import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { DATA_PATH_V8_FLAGS, tuneRuntimeForDataPath } from '../../../src/cli/runtime-tuning';

describe('tuneRuntimeForDataPath', () => {
  it('applies the data-path V8 flags', () => {
    const applied: string[] = [];
    const result = tuneRuntimeForDataPath({}, (flag) => applied.push(flag));
    expect(applied).toEqual(['--no-incremental-marking-task']);
    expect(result).toEqual(DATA_PATH_V8_FLAGS);
  });

  it('keeps V8 defaults when TWINSAN_V8_DEFAULTS=1', () => {
    const applied: string[] = [];
    expect(tuneRuntimeForDataPath({ TWINSAN_V8_DEFAULTS: '1' }, (flag) => applied.push(flag))).toEqual([]);
    expect(applied).toEqual([]);
  });

  it('names flags this V8 knows (a renamed flag would be ignored silently)', () => {
    const known = execFileSync(process.execPath, ['--v8-options'], { encoding: 'utf8' });
    for (const flag of DATA_PATH_V8_FLAGS) {
      const name = flag.replace(/^--(no-)?/, '');
      expect(known).toContain(`--${name} `);
    }
  });
});
