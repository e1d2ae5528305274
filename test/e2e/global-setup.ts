/**
 * Starts one real `npm start` server for the whole e2e run and hands its address to the tests
 * through vitest's provide/inject; the teardown stops it by process group. Set
 * HEARTH_E2E_SERVER_LOG=<file> to keep the server's output.
 */
import type { TestProject } from "vitest/node";
import { type RunningServer, startServer } from "./server.ts";

declare module "vitest" {
  export interface ProvidedContext {
    hearthUrl: string;
    hearthAdminKey: string;
    /** the server's process group (test/e2e/server.ts workerdRss), or 0 when unknown */
    hearthPgid: number;
  }
}

let server: RunningServer | undefined;

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  // HEARTH_E2E_SERVER_LOG=<file> keeps the server's output (request log, uncaught errors).
  const logFile = process.env.HEARTH_E2E_SERVER_LOG;
  server = await startServer(logFile ? { logFile } : {});
  project.provide("hearthUrl", server.url);
  project.provide("hearthAdminKey", server.adminKey);
  project.provide("hearthPgid", server.pgid ?? 0);
  return async () => {
    await server?.stop();
    server = undefined;
  };
}
