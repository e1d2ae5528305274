import { defineConfig } from "vitest/config";

// Unit tests of the SDK (sdk/test), in Node: no server. Tests of the SDK against a real
// `npm start` live in test/e2e/sdk-*.test.ts.
export default defineConfig({
  test: {
    include: ["sdk/test/**/*.test.ts"],
    testTimeout: 20_000,
  },
});
