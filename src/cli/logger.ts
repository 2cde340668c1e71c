import pino, { Logger } from 'pino';

/** JSON logs to stdout; the level comes from --log-level or TWINSAN_LOG_LEVEL. */
export function createLogger(level: string | undefined, bindings: Record<string, unknown> = {}): Logger {
  return pino({ level: level ?? process.env['TWINSAN_LOG_LEVEL'] ?? 'info', base: { pid: process.pid, ...bindings } });
}
