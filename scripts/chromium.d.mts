// Types for chromium.mjs (plain JS so that benchmarks use it without a build step).

export declare const CHROMIUM: string;
export declare const CHROMIUM_ARGS: string[];
export declare function requireChromium(): void;
