/** Output of the API commands: tables, humanised values, progress, and the streams they go to. */
export { printable, table, keyValues } from './table';
export type { Column } from './table';
export { bytes, duration, orDash, percent, timestamp, yesNo } from './humanize';
export { startProgress } from './progress';
export type { Progress } from './progress';
export { processIo } from './io';
export type { CliIo, InStream, OutStream } from './io';
