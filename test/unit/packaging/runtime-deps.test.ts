/**
 * The runtime image holds only the production dependencies (`npm prune
 * --omit=dev` in docker/Dockerfile; `npm install -g` of the package on bare
 * metal). So every package that src/ loads at run time must be a
 * dependency, not a devDependency: an import of `yaml` or `vitest` from
 * src/ would pass every test here and fail in the image.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { read, REPO } from './repo';

/** Bare specifiers a source file loads at run time (type-only imports are erased by tsc). */
export function runtimeSpecifiers(source: string): string[] {
  const out: string[] = [];
  const patterns = [
    // import x from 'p'; import { a } from 'p'; export { a } from 'p'; import 'p'
    /^\s*(?:import|export)\s+(?!type\s)(?:[^'";]*?\s+from\s+)?['"]([^'"]+)['"]/gm,
    // require('p'), import('p')
    /\b(?:require|import)\(\s*['"]([^'"]+)['"]\s*\)/g,
  ];
  for (const re of patterns) for (let m = re.exec(source); m; m = re.exec(source)) out.push(m[1]!);
  return out.filter((s) => !s.startsWith('.') && !s.startsWith('/'));
}

/** The package a bare specifier belongs to: 'fastify', '@fastify/swagger', 'node:fs'. */
export function packageOf(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && /\.(ts|js|cjs|mjs)$/.test(e.name) && !e.name.endsWith('.d.ts'))
    .map((e) => path.join(e.parentPath, e.name));
}

describe('runtime dependencies', () => {
  it('reads import forms, skipping type-only imports and relative paths', () => {
    const source = [
      "import type { Logger } from 'pino';",
      "import { Command } from 'commander';",
      "import Fastify, { LogController } from 'fastify';",
      "export { x } from './x';",
      "import swagger from '@fastify/swagger/sub';",
      "const v = require('../../package.json');",
      "const y = require('ioredis');",
      "import 'node:fs';",
    ].join('\n');
    expect(runtimeSpecifiers(source).map(packageOf).sort()).toEqual(['@fastify/swagger', 'commander', 'fastify', 'ioredis', 'node:fs']);
  });

  it('every package src/ loads is a Node built-in or a production dependency', () => {
    const pkg = JSON.parse(read(path.join(REPO, 'package.json'))) as { dependencies: Record<string, string>; devDependencies: Record<string, string> };
    const builtins = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));
    const used = new Map<string, string>();
    for (const file of sourceFiles(path.join(REPO, 'src'))) {
      for (const s of runtimeSpecifiers(readFileSync(file, 'utf8'))) used.set(packageOf(s), path.relative(REPO, file));
    }
    expect(used.size).toBeGreaterThan(0);
    for (const [name, file] of used) {
      if (builtins.has(name)) continue;
      expect(pkg.dependencies[name], `${file} loads ${name}, which is ${pkg.devDependencies[name] ? 'only a devDependency' : 'not a dependency'}`).toBeDefined();
    }
  });
});
