// Types for tools.mjs.

/** Debian package of each tool. */
export declare const TOOL_PACKAGES: Readonly<Record<string, string>>;
/** How to install the tools, for error messages. */
export declare const INSTALL_HINT: string;
/** Absolute path of an executable on PATH or in an sbin directory. */
export declare function findTool(name: string): string | undefined;
/** True when qemu's iSCSI block driver (qemu-block-extra) is installed. */
export declare function hasQemuIscsiDriver(): boolean;
/** Throws, naming the missing packages and how to install them. */
export declare function requireTools(names: readonly string[]): void;
