/**
 * The dashboard's static files, served at /dashboard/ without
 * authentication (they hold no data; the page asks for the token and
 * calls the API with it). Only the files listed here are served, read from
 * the dashboard/ folder next to this module (the build copies it into
 * dist/api/dashboard).
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { ControlError } from '../resource-groups';

export const DASHBOARD_DIR = path.join(__dirname, 'dashboard');

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
};

export const DASHBOARD_FILES = ['index.html', 'app.js', 'api.js', 'views.js', 'style.css'] as const;

/** Scripts and styles only from here; data only from this origin. */
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

export function dashboardRoutes(app: FastifyInstance): void {
  const hidden = { hide: true };
  app.get('/dashboard', { config: { public: true }, schema: hidden }, async (_request, reply) => reply.redirect('/dashboard/'));
  const serve = async (file: string) => {
    const body = await fs.readFile(path.join(DASHBOARD_DIR, file)).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') throw new ControlError('not-found', `dashboard file ${file} is missing from ${DASHBOARD_DIR} (was the build's copy step run?)`);
      throw err;
    });
    return { body, type: CONTENT_TYPES[path.extname(file)] ?? 'application/octet-stream' };
  };
  app.get('/dashboard/', { config: { public: true }, schema: hidden }, async (_request, reply) => {
    const { body, type } = await serve('index.html');
    return reply.type(type).header('content-security-policy', CSP).header('cache-control', 'no-cache').send(body);
  });
  for (const file of DASHBOARD_FILES) {
    app.get(`/dashboard/${file}`, { config: { public: true }, schema: hidden }, async (_request, reply) => {
      const { body, type } = await serve(file);
      return reply.type(type).header('content-security-policy', CSP).header('cache-control', 'no-cache').send(body);
    });
  }
}
