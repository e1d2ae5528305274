/**
 * Starts one real `npm start` server for the whole e2e run and hands its address to the tests
 * through vitest's provide/inject; the teardown stops it by process group.
 */
import type { TestProject } from "vitest/node";
import { type RunningServer, startServer } from "./server.ts";

declare module "vitest" {
  export interface ProvidedContext {
    hearthUrl: string;
    hearthAdminKey: string;
  }
}

let server: RunningServer | undefined;

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  server = await startServer();
  project.provide("hearthUrl", server.url);
  project.provide("hearthAdminKey", server.adminKey);
  return async () => {
    await server?.stop();
    server = undefined;
  };
}
