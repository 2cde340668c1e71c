/**
 * Small readers for the packaging files, so the packaging tests compare
 * what the files say instead of searching their text: Dockerfile
 * instructions by stage, systemd unit sections, the README's sections and
 * code blocks, and IPv4 CIDR arithmetic for the compose networks.
 */

/* ------------------------------ Dockerfile ------------------------------ */

export interface DockerInstruction {
  /** Upper case: FROM, RUN, COPY, ... */
  readonly keyword: string;
  /** --name=value options before the arguments (COPY --from=build). */
  readonly flags: Readonly<Record<string, string>>;
  /** The rest of the instruction, continuation lines joined. */
  readonly args: string;
  /** The exec form (a JSON array of strings), or null for the shell form. */
  readonly exec: readonly string[] | null;
  /** 1-based line where the instruction starts. */
  readonly line: number;
}

export interface DockerStage {
  /** The FROM image (build arguments not substituted). */
  readonly from: string;
  /** The stage name (FROM x AS name), or null. */
  readonly name: string | null;
  readonly instructions: readonly DockerInstruction[];
}

export interface Dockerfile {
  /** ARG instructions before the first FROM: name → default ("" when none). */
  readonly globalArgs: Readonly<Record<string, string>>;
  readonly stages: readonly DockerStage[];
}

/** Parse a Dockerfile (default escape character). Throws on what it does not understand. */
export function parseDockerfile(text: string): Dockerfile {
  const logical: { text: string; line: number }[] = [];
  let current: { text: string; line: number } | null = null;
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/\r$/, '');
    // Comment lines go, also in the middle of a continued instruction (as Docker does).
    if (/^\s*#/.test(line)) return;
    if (current === null && line.trim() === '') return;
    const continued = /\\\s*$/.test(line);
    const body = continued ? line.replace(/\\\s*$/, '') : line;
    if (current === null) current = { text: body.trim(), line: i + 1 };
    else current.text += ` ${body.trim()}`;
    if (!continued) {
      logical.push(current);
      current = null;
    }
  });
  if (current !== null) throw new Error(`line ${(current as { line: number }).line}: the file ends inside a continued instruction`);

  const globalArgs: Record<string, string> = {};
  const stages: { from: string; name: string | null; instructions: DockerInstruction[] }[] = [];
  for (const { text: t, line } of logical) {
    const m = /^([A-Za-z]+)\s*(.*)$/.exec(t);
    if (!m) throw new Error(`line ${line}: not an instruction: ${t}`);
    const keyword = m[1]!.toUpperCase();
    let rest = m[2]!;
    const flags: Record<string, string> = {};
    for (let f = /^--([a-z-]+)=(\S+)\s+/.exec(rest); f; f = /^--([a-z-]+)=(\S+)\s+/.exec(rest)) {
      flags[f[1]!] = f[2]!;
      rest = rest.slice(f[0].length);
    }
    const exec = rest.startsWith('[') ? parseExecForm(rest, line) : null;
    const instruction: DockerInstruction = { keyword, flags, args: rest, exec, line };
    if (keyword === 'FROM') {
      const from = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(rest);
      if (!from) throw new Error(`line ${line}: FROM ${rest}`);
      stages.push({ from: from[1]!, name: from[2] ?? null, instructions: [] });
    } else if (stages.length === 0) {
      if (keyword !== 'ARG') throw new Error(`line ${line}: ${keyword} before the first FROM`);
      const arg = /^([A-Za-z_][A-Za-z0-9_]*)(?:=(.*))?$/.exec(rest);
      if (!arg) throw new Error(`line ${line}: ARG ${rest}`);
      globalArgs[arg[1]!] = arg[2] ?? '';
    } else {
      stages[stages.length - 1]!.instructions.push(instruction);
    }
  }
  return { globalArgs, stages };
}

function parseExecForm(text: string, line: number): string[] {
  const value: unknown = JSON.parse(text);
  if (!Array.isArray(value) || !value.every((v): v is string => typeof v === 'string')) {
    throw new Error(`line ${line}: the exec form is not a JSON array of strings: ${text}`);
  }
  return value;
}

/** The last instruction with this keyword in a stage, or undefined. */
export function lastInstruction(stage: DockerStage, keyword: string): DockerInstruction | undefined {
  return [...stage.instructions].reverse().find((i) => i.keyword === keyword);
}

/** What a container of the stage runs: ENTRYPOINT then CMD, both in exec form. */
export function containerArgv(stage: DockerStage): string[] {
  const entrypoint = lastInstruction(stage, 'ENTRYPOINT');
  const cmd = lastInstruction(stage, 'CMD');
  for (const i of [entrypoint, cmd]) {
    if (i && i.exec === null) throw new Error(`line ${i.line}: ${i.keyword} is in shell form (signals would go to /bin/sh, not the node)`);
  }
  return [...(entrypoint?.exec ?? []), ...(cmd?.exec ?? [])];
}

/** COPY/ADD sources and destination (shell form, no quoting). */
export function copyParts(i: DockerInstruction): { sources: string[]; dest: string } {
  const words = i.exec ?? i.args.split(/\s+/).filter((w) => w !== '');
  if (words.length < 2) throw new Error(`line ${i.line}: ${i.keyword} needs a source and a destination`);
  return { sources: words.slice(0, -1), dest: words[words.length - 1]! };
}

/* ------------------------------ systemd units ------------------------------ */

/** Section → key → every value given (a key may repeat). */
export type SystemdUnit = Readonly<Record<string, Readonly<Record<string, readonly string[]>>>>;

export function parseSystemdUnit(text: string): SystemdUnit {
  const unit: Record<string, Record<string, string[]>> = {};
  let section: Record<string, string[]> | null = null;
  let pending = '';
  text.split('\n').forEach((raw, i) => {
    let line = raw.replace(/\r$/, '');
    if (pending === '' && /^\s*([#;]|$)/.test(line)) return;
    if (/\\$/.test(line)) {
      pending += `${line.slice(0, -1)} `;
      return;
    }
    line = (pending + line).trim();
    pending = '';
    const header = /^\[([^\]]+)\]$/.exec(line);
    if (header) {
      section = unit[header[1]!] ??= {};
      return;
    }
    const kv = /^([A-Za-z0-9]+)\s*=\s*(.*)$/.exec(line);
    if (!kv) throw new Error(`line ${i + 1}: not key=value: ${line}`);
    if (section === null) throw new Error(`line ${i + 1}: ${kv[1]} outside a section`);
    (section[kv[1]!] ??= []).push(kv[2]!);
  });
  if (pending !== '') throw new Error('the file ends inside a continued line');
  return unit;
}

/** The single value of a key, or undefined; throws when the key is given more than once. */
export function unitValue(unit: SystemdUnit, section: string, key: string): string | undefined {
  const values = unit[section]?.[key];
  if (values === undefined) return undefined;
  if (values.length !== 1) throw new Error(`[${section}] ${key} is given ${values.length} times`);
  return values[0];
}

/** ExecStart= as argv: the special prefixes (@ - : + !) dropped, words split with systemd's quoting. */
export function execArgv(value: string): string[] {
  return splitWords(value.replace(/^[@\-:+!]+/, ''));
}

/** Shell-like word splitting with '...' and "..." quotes (enough for command lines in docs and units). */
export function splitWords(text: string): string[] {
  const words: string[] = [];
  const re = /"((?:[^"\\]|\\.)*)"|'([^']*)'|(\S+)/g;
  for (let m = re.exec(text); m; m = re.exec(text)) words.push(m[1] !== undefined ? m[1].replace(/\\(.)/g, '$1') : (m[2] ?? m[3]!));
  return words;
}

/* ------------------------------ Markdown ------------------------------ */

/** The body of the "## title" section (up to the next heading of level 2 or less). */
export function markdownSection(text: string, title: string): string | undefined {
  const lines = text.split('\n');
  // Headings only outside code blocks (a shell comment is not a heading).
  let fenced = false;
  const heading = lines.map((l) => {
    if (/^\s*```/.test(l)) fenced = !fenced;
    return !fenced && /^#{1,2}\s/.test(l);
  });
  const start = lines.findIndex((l, i) => heading[i] && l.trim() === `## ${title}`);
  if (start < 0) return undefined;
  const end = heading.findIndex((h, i) => i > start && h);
  return lines.slice(start + 1, end < 0 ? undefined : end).join('\n');
}

/** The fenced code blocks of a Markdown text, in order, each as its lines. */
export function codeBlocks(text: string): string[][] {
  const blocks: string[][] = [];
  let open: string[] | null = null;
  for (const line of text.split('\n')) {
    if (/^\s*```/.test(line)) {
      if (open === null) open = [];
      else {
        blocks.push(open);
        open = null;
      }
    } else if (open !== null) open.push(line);
  }
  if (open !== null) throw new Error('a code block is not closed');
  return blocks;
}

/* ------------------------------ IPv4 ------------------------------ */

export function ipv4ToNumber(address: string): number {
  const parts = address.split('.');
  if (parts.length !== 4 || !parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255)) throw new Error(`not an IPv4 address: ${address}`);
  return parts.reduce((n, p) => n * 256 + Number(p), 0);
}

/** Whether `address` lies in `cidr` ("198.18.10.0/24"). */
export function inCidr(address: string, cidr: string): boolean {
  const [base, bits] = cidr.split('/');
  const prefix = Number(bits);
  if (base === undefined || !Number.isInteger(prefix) || prefix < 0 || prefix > 32) throw new Error(`not an IPv4 CIDR: ${cidr}`);
  const size = 2 ** (32 - prefix);
  const start = Math.floor(ipv4ToNumber(base) / size) * size;
  const n = ipv4ToNumber(address);
  return n >= start && n < start + size;
}
