/**
 * The packaging files of the repository, read once and parsed, for the
 * packaging tests. The start command's one source is the README's Deploy
 * section; the Dockerfile, the compose file and the systemd unit are
 * compared with it.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { codeBlocks, Dockerfile, markdownSection, parseDockerfile, parseSystemdUnit, splitWords, SystemdUnit } from './parsers';

export const REPO = path.resolve(__dirname, '../../..');
export const DOCKER_DIR = path.join(REPO, 'docker');
export const DOCKERFILE = path.join(DOCKER_DIR, 'Dockerfile');
export const COMPOSE_FILE = path.join(DOCKER_DIR, 'compose.yaml');
export const SYSTEMD_UNIT = path.join(REPO, 'examples/systemd/twinsan.service');
export const EXAMPLE_CONFIG = path.join(REPO, 'examples/node.json');

export function read(file: string): string {
  return readFileSync(file, 'utf8');
}

/** The start command as the README's Deploy section documents it: its first code block, one line. */
export function documentedStartCommand(): string[] {
  const section = markdownSection(read(path.join(REPO, 'README.md')), 'Deploy');
  if (section === undefined) throw new Error('README.md has no "## Deploy" section');
  const block = codeBlocks(section)[0];
  if (block === undefined) throw new Error('the Deploy section of README.md has no code block');
  const lines = block.filter((l) => l.trim() !== '');
  if (lines.length !== 1) throw new Error(`the Deploy section's first code block should hold the start command alone, has ${lines.length} lines`);
  return splitWords(lines[0]!);
}

/** The value after `--config` in a command line. */
export function configArg(argv: readonly string[]): string {
  const i = argv.indexOf('--config');
  if (i < 0 || i === argv.length - 1) throw new Error(`no --config FILE in: ${argv.join(' ')}`);
  return argv[i + 1]!;
}

export function dockerfile(): Dockerfile {
  return parseDockerfile(read(DOCKERFILE));
}

export function systemdUnit(): SystemdUnit {
  return parseSystemdUnit(read(SYSTEMD_UNIT));
}

/** compose.yaml as compose reads it (YAML 1.1 merge keys, as in `<<: *node`). */
export function compose(): ComposeFile {
  return parseYaml(read(COMPOSE_FILE), { merge: true }) as ComposeFile;
}

/* The part of the compose file format the tests read. */

export interface ComposeServiceNetwork {
  readonly ipv4_address?: string;
  readonly interface_name?: string;
}

export interface ComposeService {
  readonly image?: string;
  readonly build?: { readonly context: string; readonly dockerfile: string };
  readonly command?: unknown;
  readonly entrypoint?: unknown;
  readonly cap_add?: readonly string[];
  readonly security_opt?: readonly string[];
  readonly environment?: Readonly<Record<string, string>>;
  readonly networks?: Readonly<Record<string, ComposeServiceNetwork | null>>;
  readonly ports?: readonly string[];
  readonly volumes?: readonly string[];
  readonly secrets?: readonly ({ readonly source: string; readonly target?: string } | string)[];
  readonly depends_on?: Readonly<Record<string, { readonly condition: string }>>;
  readonly healthcheck?: { readonly test: readonly string[] | string; readonly interval?: string };
}

export interface ComposeFile {
  readonly services: Readonly<Record<string, ComposeService>>;
  readonly networks: Readonly<Record<string, { readonly internal?: boolean; readonly ipam?: { readonly config: readonly { readonly subnet: string; readonly ip_range?: string }[] } } | null>>;
  readonly volumes: Readonly<Record<string, unknown>>;
  readonly secrets: Readonly<Record<string, { readonly file?: string }>>;
}
