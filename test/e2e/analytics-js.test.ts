import { readFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { type Browser, chromium } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type LocalServer, ROOT } from "../../scripts/local-server.mjs";
import { type ArchivedEvent, startE2eServer, waitForArchive } from "./server";

/**
 * The browser build of analytics-next as Segment's CDN serves it: the UMD
 * bundle defines `window.AnalyticsNext`, and it loads its lazy chunks (the
 * `*.bundle.*.js` files next to it) from `{cdn}/analytics-next/bundles/`.
 */
const UMD_DIR = path.join(ROOT, "node_modules/@segment/analytics-next/dist/umd");
const BUNDLES_PATH = "/analytics-next/bundles/";

/**
 * The page: `analytics._cdn` (the snippet's own setting for a self-hosted
 * analytics.js) points the bundle's chunk loading at this static server, so
 * nothing is fetched from cdn.segment.com; the test drives analytics from
 * `page.evaluate`.
 */
const PAGE = (staticOrigin: string) => `<!doctype html>
<html>
  <head>
    <meta charset="utf-8" />
    <title>analytics.js e2e</title>
    <link rel="icon" href="data:," />
    <script>window.analytics = { _cdn: ${JSON.stringify(staticOrigin)} };</script>
    <script src="${BUNDLES_PATH}index.js"></script>
  </head>
  <body><h1>Acme shop</h1></body>
</html>`;

const CONTENT_TYPES: Record<string, string> = { ".js": "text/javascript; charset=utf-8", ".map": "application/json", ".html": "text/html; charset=utf-8" };

/** Serves the page at `/` and analytics-next's dist/umd under BUNDLES_PATH; records every path asked for. */
async function startStaticServer(): Promise<{ origin: string; requested: string[]; close: () => Promise<void> }> {
  const requested: string[] = [];
  let origin = "";
  const server: Server = createServer(async (req, res) => {
    const { pathname } = new URL(req.url ?? "/", "http://localhost");
    requested.push(pathname);
    try {
      if (pathname === "/" || pathname === "/index.html") {
        res.writeHead(200, { "content-type": CONTENT_TYPES[".html"] }).end(PAGE(origin));
        return;
      }
      if (pathname.startsWith(BUNDLES_PATH)) {
        const file = path.join(UMD_DIR, path.normalize(decodeURIComponent(pathname.slice(BUNDLES_PATH.length))));
        if (file.startsWith(UMD_DIR + path.sep)) {
          const body = await readFile(file);
          res.writeHead(200, { "content-type": CONTENT_TYPES[path.extname(file)] ?? "application/octet-stream" }).end(body);
          return;
        }
      }
      res.writeHead(404).end();
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    origin,
    requested,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}

/** What `page.evaluate` sees of the page's globals (the test's tsconfig has no DOM lib). */
type PageContext = { event: { messageId: string; type: string; anonymousId?: string }; failedDelivery(): unknown };
type PageAnalytics = PromiseLike<unknown> & {
  identify(userId: string, traits: object): Promise<PageContext>;
  track(event: string, properties: object): Promise<PageContext>;
  page(name: string): Promise<PageContext>;
  group(groupId: string, traits: object): Promise<PageContext>;
};
type PageGlobals = { AnalyticsNext: { AnalyticsBrowser: { load(settings: object, options: object): PageAnalytics } } };

describe("analytics.js (analytics-next) in Chromium against the deploy bundle", () => {
  let server: LocalServer;
  let statics: Awaited<ReturnType<typeof startStaticServer>>;
  let browser: Browser | undefined;

  beforeAll(async () => {
    [server, statics] = await Promise.all([startE2eServer(), startStaticServer()]);
    browser = await chromium.launch({
      executablePath: "/usr/bin/chromium",
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    });
  });
  afterAll(async () => {
    await browser?.close();
    await Promise.allSettled([server?.dispose(), statics?.close()]);
  });

  it("loads its settings from our server and delivers identify, track, page and group, enriched", async () => {
    const serverOrigin = new URL(server.url).origin;
    const apiHost = `${new URL(server.url).host}/v1`;
    // Headless Chromium says "HeadlessChrome/…", which our server rightly parses as "Chrome Headless";
    // the page gets the user agent the same Chromium sends with a window.
    const probe = await browser!.newPage();
    const headlessAgent = await probe.evaluate(() => (globalThis as unknown as { navigator: { userAgent: string } }).navigator.userAgent);
    await probe.close();
    const userAgent = headlessAgent.replace("HeadlessChrome/", "Chrome/");
    const page = await browser!.newPage({ userAgent });

    const requests: string[] = [];
    const toServer: { method: string; url: string }[] = [];
    const responses: { method: string; url: string; status: number }[] = [];
    const toSegment: string[] = [];
    const failed: string[] = [];
    const consoleLines: string[] = [];
    page.on("request", (request) => {
      const url = request.url();
      requests.push(`${request.method()} ${url}`);
      if (url.startsWith(`${serverOrigin}/`)) toServer.push({ method: request.method(), url });
      if (/^[a-z]+:\/\/([^/]*\.)?segment\.(io|com)([:/]|$)/i.test(url)) toSegment.push(url);
    });
    page.on("response", (response) => {
      if (response.url().startsWith(`${serverOrigin}/`)) responses.push({ method: response.request().method(), url: response.url(), status: response.status() });
    });
    page.on("requestfailed", (request) => failed.push(`${request.method()} ${request.url()}: ${request.failure()?.errorText}`));
    page.on("console", (message) => consoleLines.push(`${message.type()}: ${message.text()}`));
    page.on("pageerror", (error) => consoleLines.push(`pageerror: ${error.message}`));

    let passed = false;
    try {
      await page.goto(`${statics.origin}/`);
      const sent = await page.evaluate(
        async ({ writeKey, cdnURL, apiHost }) => {
          const { AnalyticsBrowser } = (globalThis as unknown as PageGlobals).AnalyticsNext;
          const analytics = AnalyticsBrowser.load({ writeKey, cdnURL }, { integrations: { "Segment.io": { apiHost, protocol: "http" } } });
          await analytics; // settings loaded, plugins registered
          // Each call resolves after the Segment.io plugin's first attempt to send it (a failed one is retried later).
          const contexts = [
            await analytics.identify("user-1", { email: "user1@acme-shop.com" }),
            await analytics.track("Product Viewed", { product_id: "p1", price: 10 }),
            await analytics.page("Home"),
            await analytics.group("acme", { name: "Acme" }),
          ];
          return contexts.map((ctx) => ({ ...ctx.event, failedDelivery: ctx.failedDelivery() !== undefined }));
        },
        { writeKey: server.writeKey, cdnURL: server.url, apiHost },
      );

      expect(sent.map((e) => e.type)).toEqual(["identify", "track", "page", "group"]);
      expect(sent.filter((e) => e.failedDelivery)).toEqual([]);

      // This file's server is its own: its archive holds exactly what this page sent.
      const archived = await waitForArchive(server, "", sent.length);
      const byId = new Map(archived.map((event) => [event.messageId, event]));
      expect(archived.map((e) => e.messageId).sort()).toEqual(sent.map((e) => e.messageId).sort());
      const [identify, track, pageView, group] = sent.map((e) => byId.get(e.messageId)!) as [ArchivedEvent, ArchivedEvent, ArchivedEvent, ArchivedEvent];

      const anonymousId = sent[0]!.anonymousId;
      expect(anonymousId).toEqual(expect.any(String));
      const identity = { workspaceId: "default", userId: "user-1", anonymousId };
      expect(identify).toMatchObject({ ...identity, type: "identify", traits: { email: "user1@acme-shop.com" } });
      expect(track).toMatchObject({ ...identity, type: "track", event: "Product Viewed", properties: { product_id: "p1", price: 10 } });
      expect(pageView).toMatchObject({ ...identity, type: "page", name: "Home", properties: { url: `${statics.origin}/`, path: "/" } });
      expect(group).toMatchObject({ ...identity, type: "group", groupId: "acme", traits: { name: "Acme" } });
      for (const event of [identify, track, pageView, group]) {
        const context = event.context as Record<string, any>;
        expect(context.library?.name).toBe("analytics.js");
        expect(context.userAgent).toBe(userAgent);
        expect(["Chrome", "Chromium"]).toContain(context.browser?.name);
        expect(context.ip).toEqual(expect.any(String));
        expect(event).not.toHaveProperty("writeKey"); // sent in each body; authenticates, is not stored
        expect(context.page).toMatchObject({ url: `${statics.origin}/` });
      }

      // The settings document came from our server, and every request to it succeeded.
      expect(toServer.map((r) => `${r.method} ${new URL(r.url).pathname}`)).toContain(`GET /v1/projects/${server.writeKey}/settings`);
      const requestLine = (r: { method: string; url: string }) => `${r.method} ${r.url}`;
      expect(responses.map(requestLine).sort()).toEqual(toServer.map(requestLine).sort());
      expect(responses.filter((r) => r.status < 200 || r.status > 299)).toEqual([]);
      expect(toSegment).toEqual([]);
      expect(failed).toEqual([]);
      expect(consoleLines.filter((line) => line.startsWith("error") || line.startsWith("pageerror"))).toEqual([]);
      passed = true;
    } finally {
      // What the page did and said, when it went wrong.
      if (!passed)
        process.stdout.write(
        `analytics.js e2e:\n  requests:\n${requests.map((r) => `    ${r}`).join("\n")}\n  responses from our server:\n${responses
          .map((r) => `    ${r.status} ${r.method} ${r.url}`)
          .join("\n")}\n  static server paths: ${statics.requested.join(", ")}\n  failed: ${JSON.stringify(failed)}\n  console: ${JSON.stringify(consoleLines, null, 2)}\n`,
      );
      await page.close();
    }
  });
});
