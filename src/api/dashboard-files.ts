/**
 * The dashboard's static files, served at /dashboard/ without
 * authentication (they hold no data; the page asks for the token and
 * calls the API with it). Only the files listed here are served. They are
 * read once when the app is built, from the dashboard/ folder next to this
 * module (the build copies src/api/dashboard to dist/api/dashboard), so a
 * missing file stops the node at start instead of failing a browser later.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { FastifyInstance, FastifyReply } from 'fastify';

export const DASHBOARD_DIR = path.join(__dirname, 'dashboard');

export const DASHBOARD_FILES = ['index.html', 'app.js', 'api.js', 'views.js', 'style.css'] as const;

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
};

/** Scripts, styles and requests only from this origin; no framing. */
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

interface LoadedFile {
  readonly body: Buffer;
  readonly type: string;
}

function load(dir: string): ReadonlyMap<string, LoadedFile> {
  const files = new Map<string, LoadedFile>();
  for (const file of DASHBOARD_FILES) {
    let body: Buffer;
    try {
      body = readFileSync(path.join(dir, file));
    } catch (err) {
      throw new Error(`dashboard file ${file} cannot be read from ${dir} (${(err as Error).message}); build with npm run build:ts, which copies the dashboard`);
    }
    files.set(file, { body, type: CONTENT_TYPES[path.extname(file)] ?? 'application/octet-stream' });
  }
  return files;
}

export function dashboardRoutes(app: FastifyInstance, dir = DASHBOARD_DIR): void {
  const files = load(dir);
  const route = { config: { public: true }, schema: { hide: true } };
  app.get('/dashboard', route, async (_request, reply) => reply.redirect('/dashboard/'));
  for (const [file, { body, type }] of files) {
    const send = async (_request: unknown, reply: FastifyReply) =>
      reply.type(type).header('content-security-policy', CSP).header('x-content-type-options', 'nosniff').header('cache-control', 'no-cache').send(body);
    app.get(`/dashboard/${file}`, route, send);
    if (file === 'index.html') app.get('/dashboard/', route, send);
  }
}
