import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

export default defineConfig(async () => {
  const migrations = await readD1Migrations("./migrations");
  const workersProject = (name: string, { include, exclude = [], bindings = {} }: { include: string[]; exclude?: string[]; bindings?: Record<string, string> }) => ({
    plugins: [
      cloudflareTest({
        wrangler: { configPath: "./wrangler.toml" },
        miniflare: {
          bindings: { TEST_MIGRATIONS: migrations, ENVIRONMENT: "test", ...bindings },
          // Low enough that a test can reach it; per source, and every test file makes its own sources.
          ratelimits: { SOURCE_RATE_LIMITER: { namespace_id: "1001", simple: { limit: 1000, period: 10 } } },
        },
      }),
    ],
    test: { name, include, exclude, setupFiles: ["./test/setup.ts"] },
  });
  return {
    test: {
      projects: [
        workersProject("workers", { include: ["test/**/*.test.ts"], exclude: ["test/e2e/**", "test/sharded/**"] }),
        // The same runtime with every workspace's identity spread over three graph shards.
        workersProject("sharded", { include: ["test/sharded/**/*.test.ts"], bindings: { IDENTITY_GRAPH_SHARDS: "3" } }),
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
