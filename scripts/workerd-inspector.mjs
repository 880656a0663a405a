/**
 * A connection to the local Worker's isolate through workerd's V8 inspector (Chrome DevTools
 * protocol), which `startLocalServer({ inspectorPort })` exposes: used by profile-workerd.mjs and
 * heap-workerd.mjs. The inspector serves one session at a time: a second connection closes the
 * first, so run one of them per benchmark run.
 */
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits for the user Worker's isolate to appear; Miniflare's own services (entry, caches, R2...) run in others. */
async function workerTarget(port) {
  for (let attempt = 0; attempt < 240; attempt++) {
    try {
      const targets = await (await fetch(`http://127.0.0.1:${port}/json`)).json();
      const worker = targets.find((t) => /worker core:user:/.test(t.title ?? ""));
      if (worker) return worker;
    } catch {
      // Not listening yet.
    }
    await sleep(500);
  }
  throw new Error(`no Worker isolate on the inspector at 127.0.0.1:${port}`);
}

/**
 * Connects to the isolate: `send(method, params)` answers the protocol's reply, or null once the
 * runtime has gone away (the benchmark ended); `closed` settles then.
 */
export async function connectToWorker(port) {
  // WebSocket is global from Node 22 on; the machines' default Node may be older than the one npm scripts use.
  if (typeof WebSocket === "undefined") throw new Error(`this script needs Node 22 or later (it has WebSocket built in): run it with node_modules/.bin/node, not Node ${process.versions.node}`);
  const target = await workerTarget(port);
  const ws = new WebSocket(target.webSocketDebuggerUrl);
  let id = 0;
  const pending = new Map();
  ws.onmessage = (message) => {
    const data = JSON.parse(message.data);
    pending.get(data.id)?.(data);
    pending.delete(data.id);
  };
  const closed = new Promise((resolve) => (ws.onclose = resolve));
  await new Promise((resolve) => (ws.onopen = resolve));
  const send = (method, params = {}) =>
    Promise.race([
      new Promise((resolve) => {
        pending.set(++id, resolve);
        ws.send(JSON.stringify({ id, method, params }));
      }),
      closed.then(() => null),
    ]);
  return { title: target.title, send, closed, isOpen: () => ws.readyState === WebSocket.OPEN, close: () => ws.close() };
}

export { sleep };
