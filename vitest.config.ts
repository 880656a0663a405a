import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

export default defineConfig(async () => {
  const migrations = await readD1Migrations("./migrations");
  return {
    test: {
      projects: [
        {
          plugins: [
            cloudflareTest({
              wrangler: { configPath: "./wrangler.toml" },
              miniflare: {
                bindings: { TEST_MIGRATIONS: migrations, ENVIRONMENT: "test" },
                // Low enough that a test can reach it; per source, and every test file makes its own sources.
                ratelimits: { SOURCE_RATE_LIMITER: { namespace_id: "1001", simple: { limit: 1000, period: 10 } } },
              },
            }),
          ],
          test: {
            name: "workers",
            include: ["test/**/*.test.ts"],
            exclude: ["test/e2e/**"],
            setupFiles: ["./test/setup.ts"],
          },
        },
        {
          test: {
            name: "e2e",
            include: ["test/e2e/**/*.test.ts"],
            environment: "node",
            testTimeout: 120_000,
            hookTimeout: 180_000,
            globalSetup: ["./test/e2e/global-setup.ts"],
          },
        },
      ],
    },
  };
});
