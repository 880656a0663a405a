import type { App } from "../../context";
import { resolveWriteKey } from "../../config/keys-store";
import { ApiError } from "../../lib/problem";

/**
 * The settings document analytics.js (analytics-next) fetches from
 * `{cdnURL}/v1/projects/{writeKey}/settings` before it loads. It points the
 * Segment.io destination at this host and turns off everything that would call
 * Segment's own services (metrics, remote plugins, bundled integrations).
 */
export function registerSettingsRoute(app: App) {
  app.get("/v1/projects/:writeKey/settings", async (c) => {
    const writeKey = c.req.param("writeKey");
    const source = await resolveWriteKey(c.get("db"), writeKey);
    if (!source) throw new ApiError("NOT_FOUND", "no source has this write key");
    const url = new URL(c.req.url);
    c.header("cache-control", "public, max-age=300");
    return c.json({
      integrations: {
        "Segment.io": {
          apiKey: writeKey,
          apiHost: `${url.host}/v1`,
          protocol: url.protocol.replace(":", ""),
          unbundledIntegrations: [],
          addBundledMetadata: true,
          maybeBundledConfigIds: {},
          versionSettings: { version: "4.4.7", componentTypes: ["browser"] },
        },
      },
      plan: {
        track: { __default: { enabled: true, integrations: {} } },
        identify: { __default: { enabled: true } },
        group: { __default: { enabled: true } },
      },
      edgeFunction: {},
      analyticsNextEnabled: true,
      middlewareSettings: {},
      enabledMiddleware: {},
      metrics: { sampleRate: 0, host: `${url.host}/v1` },
      legacyVideoPluginsEnabled: false,
      remotePlugins: [],
      consentSettings: { allCategories: [], hasUnmappedDestinations: false },
    });
  });
}
