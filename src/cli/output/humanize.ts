/** Numbers and times as people read them in tables. */

const BINARY_UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'] as const;

/** 10737418240 → "10 GiB", 1610612736 → "1.5 GiB", 512 → "512 B". Three significant digits at most. */
export function bytes(n: number): string {
  if (!Number.isFinite(n) || n < 0) return String(n);
  let unit = 0;
  let v = n;
  while (v >= 1024 && unit < BINARY_UNITS.length - 1) {
    v /= 1024;
    unit++;
  }
  if (unit === 0) return `${n} B`;
  const digits = v >= 100 ? 0 : v >= 10 ? 1 : 2;
  // Trailing zeros say nothing: "10 GiB", not "10.0 GiB".
  return `${Number(v.toFixed(digits))} ${BINARY_UNITS[unit]}`;
}

/** 0.4237 → "42.4%". */
export function percent(fraction: number): string {
  const clamped = Math.min(1, Math.max(0, fraction));
  return `${(clamped * 100).toFixed(1)}%`;
}

/** 1234 → "1.2 s", 75000 → "1m15s". */
export function duration(ms: number): string {
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h > 0 ? `${h}h${String(m).padStart(2, '0')}m` : `${m}m${String(s % 60).padStart(2, '0')}s`;
}

/** An ISO timestamp as "2026-11-22 05:39:05Z"; what is not a time is shown as is. */
export function timestamp(iso: string | null): string {
  if (iso === null) return '-';
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return iso;
  return new Date(t).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

export function yesNo(v: boolean): string {
  return v ? 'yes' : 'no';
}

/** A value or "-" for none. */
export function orDash(v: string | number | null | undefined): string {
  return v === null || v === undefined || v === '' ? '-' : String(v);
}
