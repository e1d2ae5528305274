// Types for server-process.mjs (plain JS so that scripts and benchmarks run without a build step).

export declare const REPO_ROOT: string;
export declare const START_SCRIPT: string;
export declare const DEFAULT_ADMIN_KEY: string;
export declare const LOOPBACK: string;

export declare function freePort(): Promise<number>;

export declare function waitForHealth(
  baseUrl: string,
  opts?: { timeoutMs?: number; intervalMs?: number; abortReason?: () => string | null | undefined | false },
): Promise<{ ok: true } | { ok: false; reason: string }>;

export declare function processGroupMembers(pgid: number): Promise<number[]>;

export declare function stopProcessGroup(
  pgid: number,
  opts?: { graceMs?: number; killMs?: number },
): Promise<number[]>;

export interface StartHearthOptions {
  port?: number;
  adminKey?: string;
  jwtSecret?: string;
  stateDir?: string;
  timeoutMs?: number;
  env?: Record<string, string>;
  onOutput?: (chunk: string) => void;
  snapshot?: boolean;
}

export interface HearthProcess {
  url: string;
  port: number;
  adminKey: string;
  stateDir: string;
  srcDir: string;
  pid: number | undefined;
  output(): string;
  exited(): { code: number | null; signal: string | null; error?: Error } | null;
  stop(): Promise<void>;
}

export declare function snapshotSource(): Promise<string>;

export declare function startHearth(opts?: StartHearthOptions): Promise<HearthProcess>;

export declare function portIsFree(port: number): Promise<boolean>;
