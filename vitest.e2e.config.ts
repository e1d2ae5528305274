import { defineConfig } from "vitest/config";

// Node-side tests with real clients (supabase-js, fetch) against a real `npm start`
// server, which test/e2e/global-setup.ts starts on a free port and stops by process group.
export default defineConfig({
  test: {
    include: ["test/e2e/**/*.test.ts"],
    globalSetup: ["./test/e2e/global-setup.ts"],
    testTimeout: 60_000,
    hookTimeout: 180_000,
    fileParallelism: false,
  },
});
