/**
 * Deadlines and a live-query watcher, shared by the SDK bench in Node (sdk-engines.mjs) and in
 * the browser (browser-engine.mjs, bundled into the page): no Node imports here. Each side
 * gives its own deadline and clock (hrtime in Node, performance.now() in the page).
 */

/**
 * @param {{ waitMs: number, now: () => unknown }} o
 * @returns {{
 *   within: <T>(promise: Promise<T>, what: string) => Promise<T>,
 *   watch: (engine: any, table: string) => { next(id: unknown): Promise<unknown>, count(n: number): Promise<unknown>, stop(): void },
 * }}
 */
export function waiters({ waitMs, now }) {
  /** `promise`, or a rejection naming `what` after `waitMs`: a hang fails its step, not the run. */
  const within = (promise, what) => {
    let timer;
    const late = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} did not happen within ${waitMs / 1000} s`)), waitMs);
    });
    return Promise.race([promise, late]).finally(() => clearTimeout(timer));
  };

  /**
   * A live query of the whole `table`: `next(id)` resolves with the time (`now()`) of the first
   * callback whose rows hold that id; `count(n)` with that of the first one with at least `n`
   * rows. `stop()` unsubscribes.
   */
  const watch = (engine, table) => {
    const byId = new Map();
    const byCount = [];
    let last = 0;
    const wait = (register, what) =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`live query never showed ${what} (last: ${last} rows)`)),
          waitMs,
        );
        register((at) => {
          clearTimeout(timer);
          resolve(at);
        });
      });
    const stop = engine.live(table, {}, (rows) => {
      const at = now();
      last = rows.length;
      if (byId.size > 0) {
        const ids = new Set(rows.map((r) => r.id));
        for (const [id, done] of byId) {
          if (!ids.has(id)) continue;
          byId.delete(id);
          done(at);
        }
      }
      for (let i = byCount.length - 1; i >= 0; i--) {
        if (rows.length < byCount[i].n) continue;
        byCount[i].done(at);
        byCount.splice(i, 1);
      }
    });
    return {
      next: (id) => wait((done) => byId.set(id, done), `row ${id}`),
      count: (n) => wait((done) => byCount.push({ n, done }), `${n} rows`),
      stop,
    };
  };

  return { within, watch };
}
