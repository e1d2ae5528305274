/** Throughput runs with autocannon: fixed connections, bounded duration, loopback only. */
import autocannon from "autocannon";

/**
 * @param {object} o
 * @param {string} o.url full URL (host and path of the first request)
 * @param {Record<string,string>} [o.headers]
 * @param {() => string} [o.nextPath] varies the path per request (e.g. a random id)
 * @param {number} o.seconds
 * @param {number} [o.connections]
 */
export async function throughput({ url, headers = {}, nextPath, seconds, connections = 10 }) {
  const u = new URL(url);
  if (u.hostname !== "127.0.0.1" && u.hostname !== "localhost") throw new Error(`refusing to load ${u.host}`);
  const result = await autocannon({
    url: `${u.protocol}//${u.host}`,
    connections,
    duration: seconds,
    timeout: 30,
    headers,
    requests: [
      {
        method: "GET",
        path: `${u.pathname}${u.search}`,
        ...(nextPath ? { setupRequest: (req) => ({ ...req, path: nextPath() }) } : {}),
      },
    ],
  });
  return {
    reqPerSec: result.requests.average,
    total: result.requests.total,
    p50: result.latency.p50,
    p99: result.latency.p99,
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
  };
}
