import path from "node:path";
import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-pool-workers";
import { defineConfig } from "vitest/config";

// Server tests run inside workerd with the real D1, R2 and Durable Object bindings of
// wrangler.toml. The catalog migrations are applied by test/apply-migrations.ts.
export default defineConfig(async () => {
  const migrations = await readD1Migrations(path.join(import.meta.dirname, "migrations"));
  return {
    plugins: [
      cloudflareTest({
        wrangler: { configPath: "./wrangler.toml" },
        miniflare: {
          bindings: {
            HEARTH_ENV: "test",
            HEARTH_ADMIN_KEY: "test-admin-key",
            HEARTH_JWT_SECRET: "test-jwt-secret-0123456789abcdef0123456789abcdef",
            HEARTH_MAX_BODY_BYTES: "4194304",
            // Flushes and freezes happen when a test asks (cold-tier tests drive the alarm).
            HEARTH_FLUSH_AGE_SECONDS: "86400",
            HEARTH_FREEZE_AFTER_SECONDS: "0",
            // No request rate limits: test/rate-limit.test.ts sets them per project.
            HEARTH_PROJECT_RATE_LIMIT: "0",
            HEARTH_CLIENT_RATE_LIMIT: "0",
            // Cases per property of test/fuzz.test.ts (`npm run soak` raises it).
            FUZZ_RUNS: process.env.FUZZ_RUNS ?? "60",
            // Random fault sequences of test/chaos.test.ts (`npm run soak` raises it).
            CHAOS_RUNS: process.env.CHAOS_RUNS ?? "4",
            TEST_MIGRATIONS: migrations,
          },
        },
      }),
    ],
    test: {
      include: ["test/**/*.test.ts"],
      exclude: ["test/e2e/**"],
      setupFiles: ["./test/apply-migrations.ts"],
    },
  };
});
