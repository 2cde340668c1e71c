/**
 * Why a `twinsan` command failed, and the exit code each reason gets.
 * Scripts branch on the exit code; people read the one-line message.
 */

/** Exit codes of every command that talks to the API (docs/cli.md lists them). */
export const EXIT = {
  ok: 0,
  /** The API answered and refused (4xx/5xx), or a job it ran ended failed. */
  refused: 1,
  /** Bad command line: unknown option, bad value, missing argument. */
  usage: 2,
  /** No answer: connection refused, DNS, timeout, TLS verification. */
  unreachable: 3,
} as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

export class CliError extends Error {
  override readonly name: string = 'CliError';
  constructor(
    message: string,
    readonly exitCode: ExitCode,
  ) {
    super(message);
  }
}

/** The command line is wrong in a way commander cannot see (options that exclude each other, a secret file that is not there). */
export class UsageError extends CliError {
  override readonly name = 'UsageError';
  constructor(message: string) {
    super(message, EXIT.usage);
  }
}

/** The API's JSON error body: { statusCode, error, message, field? }. */
export interface ApiErrorBody {
  readonly statusCode: number;
  readonly error: string;
  readonly message: string;
  readonly field?: string;
}

export class ApiError extends CliError {
  override readonly name = 'ApiError';
  constructor(
    readonly status: number,
    readonly body: ApiErrorBody,
    /** The command-line option or argument that fed body.field, when the command knows it. */
    readonly option: string | null,
    /** Appended after the message: what to do about it (a 401 without a token, ...). */
    readonly hint: string | null,
  ) {
    super(formatApiError(status, body, option, hint), EXIT.refused);
  }
}

function formatApiError(status: number, body: ApiErrorBody, option: string | null, hint: string | null): string {
  const field = body.field ? ` (field ${body.field}${option ? `, from ${option}` : ''})` : '';
  return `${body.message}${field} [${status} ${body.error}]${hint ? `\n  hint: ${hint}` : ''}`;
}

/** The API could not be reached at all, or its TLS certificate was not trusted. */
export class ConnectError extends CliError {
  override readonly name = 'ConnectError';
  constructor(
    readonly url: string,
    reason: string,
    readonly hint: string | null,
  ) {
    super(`cannot reach ${url}: ${reason}${hint ? `\n  hint: ${hint}` : ''}`, EXIT.unreachable);
  }
}
