// tsc compiles only .ts: copy the dashboard's static files next to the
// compiled API (dist/api/dashboard), where src/api/dashboard-files.ts reads them.
import { cpSync, existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const from = path.join(root, 'src/api/dashboard');
const to = path.join(root, 'dist/api/dashboard');
if (!existsSync(from)) throw new Error(`missing ${from}`);
cpSync(from, to, { recursive: true });
