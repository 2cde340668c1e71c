/**
 * A very small structural validator: a schema is a tree of object, array
 * and leaf specs, and validate() walks a parsed JSON value against it,
 * collecting every problem with the dotted key path it sits at
 * ("peer.links[1].local"). Leaf checks return the problem as text (or null),
 * phrased to follow the quoted value: `"127.0.0.1:99999" is not host:port`.
 *
 * Hand-written because the project has no schema validator yet (fastify's
 * ajv arrives with the REST API); this covers what a config file needs and
 * nothing more.
 */

/** A leaf check: null when the value is acceptable, else what is wrong with it. */
export type LeafCheck = (value: unknown) => string | null;

export type Spec = LeafSpec | ObjectSpec | ArraySpec;

export interface LeafSpec {
  readonly kind: 'leaf';
  readonly check: LeafCheck;
}

export interface FieldSpec {
  readonly spec: Spec;
  readonly required?: boolean;
}

export interface ObjectSpec {
  readonly kind: 'object';
  readonly fields: Readonly<Record<string, FieldSpec>>;
}

export interface ArraySpec {
  readonly kind: 'array';
  readonly item: Spec;
  readonly min?: number;
}

export interface Issue {
  /** Dotted path of the key ("volumes[0].owner"); "" for the document itself. */
  readonly key: string;
  readonly problem: string;
}

export const leaf = (check: LeafCheck): LeafSpec => ({ kind: 'leaf', check });
export const object = (fields: Record<string, FieldSpec>): ObjectSpec => ({ kind: 'object', fields });
export const array = (item: Spec, min = 0): ArraySpec => ({ kind: 'array', item, min });
export const required = (spec: Spec): FieldSpec => ({ spec, required: true });
export const optional = (spec: Spec): FieldSpec => ({ spec });

/** A value as it appears in a message: JSON, cut short. */
export function quote(value: unknown): string {
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function join(base: string, key: string): string {
  return base === '' ? key : `${base}.${key}`;
}

/** Every problem of `value` against `spec`, in document order. */
export function validate(spec: Spec, value: unknown, key = ''): Issue[] {
  const issues: Issue[] = [];
  walk(spec, value, key, issues);
  return issues;
}

function walk(spec: Spec, value: unknown, key: string, issues: Issue[]): void {
  switch (spec.kind) {
    case 'leaf': {
      const problem = spec.check(value);
      if (problem !== null) issues.push({ key, problem: `${quote(value)} ${problem}` });
      return;
    }
    case 'object': {
      if (!isPlainObject(value)) {
        issues.push({ key, problem: `${quote(value)} is not an object` });
        return;
      }
      for (const [name, field] of Object.entries(spec.fields)) {
        if (value[name] === undefined) {
          if (field.required) issues.push({ key: join(key, name), problem: 'missing' });
          continue;
        }
        walk(field.spec, value[name], join(key, name), issues);
      }
      for (const name of Object.keys(value)) {
        if (!Object.prototype.hasOwnProperty.call(spec.fields, name)) issues.push({ key: join(key, name), problem: 'unknown key' });
      }
      return;
    }
    case 'array': {
      if (!Array.isArray(value)) {
        issues.push({ key, problem: `${quote(value)} is not a list` });
        return;
      }
      const min = spec.min ?? 0;
      if (value.length < min) issues.push({ key, problem: `has ${value.length} entries, needs at least ${min}` });
      value.forEach((item, i) => walk(spec.item, item, `${key}[${i}]`, issues));
      return;
    }
  }
}

/* ---------------- leaf checks ---------------- */

export const isString: LeafCheck = (v) => (typeof v === 'string' && v.length > 0 ? null : 'is not a non-empty string');
export const isBoolean: LeafCheck = (v) => (typeof v === 'boolean' ? null : 'is not true or false');

export function integerIn(min: number, max: number): LeafCheck {
  return (v) => (typeof v === 'number' && Number.isSafeInteger(v) && v >= min && v <= max ? null : `is not a whole number in ${min}..${max}`);
}

export function oneOf(values: readonly (string | number)[]): LeafCheck {
  return (v) => (values.includes(v as string | number) ? null : `is not one of ${values.map((x) => JSON.stringify(x)).join(', ')}`);
}

export function matching(re: RegExp, what: string): LeafCheck {
  return (v) => (typeof v === 'string' && re.test(v) ? null : `is not ${what}`);
}

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

/** "host:port" or "[v6]:port"; the port 0..65535 when `allowZero`, else 1..65535. */
export function parseHostPort(value: string, allowZero = false): HostPort | null {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9._-]+)):(\d{1,5})$/.exec(value);
  if (!m) return null;
  const port = Number(m[3]);
  if (port > 65535 || (port === 0 && !allowZero)) return null;
  return { host: m[1] ?? m[2]!, port };
}

export function hostPort(allowZero = false): LeafCheck {
  return (v) => (typeof v === 'string' && parseHostPort(v, allowZero) !== null ? null : 'is not host:port');
}
