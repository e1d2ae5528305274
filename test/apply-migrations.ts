import { applyD1Migrations, type D1Migration } from "cloudflare:test";
import { env } from "cloudflare:workers";

// Setup file: runs before each test file, in the same isolate as the tests.
// applyD1Migrations records what it applied, so running it again is a no-op.
const testEnv = env as unknown as { CATALOG: D1Database; TEST_MIGRATIONS: D1Migration[] };
await applyD1Migrations(testEnv.CATALOG, testEnv.TEST_MIGRATIONS);
