// Types for ports.mjs.

export declare const LOOPBACK: string;
/** A TCP port on `host` (default 127.0.0.1) that is free right now. */
export declare function freePort(host?: string): Promise<number>;
/** True when something accepts a TCP connection on host:port. */
export declare function canConnect(port: number, host?: string, timeoutMs?: number): Promise<boolean>;
/** Poll until host:port accepts connections; `check` may throw to give up early. */
export declare function waitForPort(
  port: number,
  options?: { host?: string; timeoutMs?: number; intervalMs?: number; check?: () => void },
): Promise<void>;
