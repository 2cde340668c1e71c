/**
 * The readers the packaging tests rely on: if one of them silently read
 * less than the file says, the packaging checks would pass on nothing.
 */
import { describe, expect, it } from 'vitest';
import { codeBlocks, containerArgv, copyParts, execArgv, inCidr, markdownSection, parseDockerfile, parseSystemdUnit, splitWords, unitValue } from './parsers';

describe('parseDockerfile', () => {
  const text = [
    '# syntax=docker/dockerfile:1',
    'ARG BASE=node:20',
    'FROM ${BASE} AS build',
    'RUN apt-get update \\',
    '    # a comment inside a continuation is dropped',
    ' && apt-get install -y g++',
    'COPY --from=build --chown=1:1 /src/dist ./dist/',
    '',
    'FROM debian AS runtime',
    'ENTRYPOINT ["twinsan"]',
    'CMD ["node", "start"]',
    'CMD ["node", "start", "--config", "/etc/x.json"]',
  ].join('\n');

  it('splits stages, joins continued lines without their comments, and reads flags and the exec form', () => {
    const d = parseDockerfile(text);
    expect(d.globalArgs).toEqual({ BASE: 'node:20' });
    expect(d.stages.map((s) => [s.from, s.name])).toEqual([
      ['${BASE}', 'build'],
      ['debian', 'runtime'],
    ]);
    const [run, copy] = d.stages[0]!.instructions;
    expect(run!.args).toBe('apt-get update && apt-get install -y g++');
    expect(run!.line).toBe(4);
    expect(copy!.flags).toEqual({ from: 'build', chown: '1:1' });
    expect(copyParts(copy!)).toEqual({ sources: ['/src/dist'], dest: './dist/' });
    // The last CMD wins, after the ENTRYPOINT.
    expect(containerArgv(d.stages[1]!)).toEqual(['twinsan', 'node', 'start', '--config', '/etc/x.json']);
  });

  it('refuses a shell-form entrypoint, an instruction before FROM, and an unfinished continuation', () => {
    expect(() => containerArgv(parseDockerfile('FROM x\nENTRYPOINT twinsan node').stages[0]!)).toThrow(/shell form/);
    expect(() => parseDockerfile('RUN true\nFROM x')).toThrow(/before the first FROM/);
    expect(() => parseDockerfile('FROM x\nRUN a \\')).toThrow(/continued/);
  });
});

describe('parseSystemdUnit', () => {
  it('reads sections, repeated keys and continued lines, skipping # and ; comments', () => {
    const unit = parseSystemdUnit(['# c', '[Unit]', 'After=a.target', 'After=b.target', '', '[Service]', '; c', 'ExecStart=-/usr/bin/x \\', '  --config "/etc/a b.json"'].join('\n'));
    expect(unit['Unit']!['After']).toEqual(['a.target', 'b.target']);
    expect(execArgv(unitValue(unit, 'Service', 'ExecStart')!)).toEqual(['/usr/bin/x', '--config', '/etc/a b.json']);
    expect(() => unitValue(unit, 'Unit', 'After')).toThrow(/2 times/);
    expect(unitValue(unit, 'Service', 'Type')).toBeUndefined();
  });

  it('refuses a key outside a section and a line that is not key=value', () => {
    expect(() => parseSystemdUnit('Type=simple')).toThrow(/outside a section/);
    expect(() => parseSystemdUnit('[Service]\nType simple')).toThrow(/not key=value/);
  });
});

describe('Markdown and words', () => {
  it('finds a section up to the next heading, ignoring # lines in code blocks, and its code blocks', () => {
    const md = ['# T', '## Deploy', 'text', '```sh', '# not a heading', 'twinsan node start', '```', '## Docs', '```', 'other', '```'].join('\n');
    const section = markdownSection(md, 'Deploy')!;
    expect(codeBlocks(section)).toEqual([['# not a heading', 'twinsan node start']]);
    expect(markdownSection(md, 'Missing')).toBeUndefined();
  });

  it('splits words with quotes', () => {
    expect(splitWords(`a 'b c' "d \\"e\\"" f`)).toEqual(['a', 'b c', 'd "e"', 'f']);
  });
});

describe('inCidr', () => {
  it('tells addresses inside a prefix from those outside', () => {
    expect(inCidr('198.18.10.50', '198.18.10.0/24')).toBe(true);
    expect(inCidr('198.18.11.0', '198.18.10.0/24')).toBe(false);
    expect(inCidr('198.18.10.50', '198.18.10.128/25')).toBe(false);
    expect(inCidr('198.18.10.200', '198.18.10.128/25')).toBe(true);
    expect(() => inCidr('198.18.10.256', '198.18.10.0/24')).toThrow(/not an IPv4 address/);
  });
});
