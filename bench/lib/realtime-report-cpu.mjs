/** The realtime bench's CPU and profile sections: where the time of a fan-out goes. */
import { errorCell, table } from "./markdown.mjs";
import { p, pct, sms, usPer } from "./realtime-format.mjs";
import { int, ms, ratio } from "./stats.mjs";

const unwrap = (st) => ({ changes: st.changes.value, broadcast: st.broadcast.value });

function cpuRow(label, n, cpu, frames) {
  const ours = cpu.inner + cpu.proxy + cpu.client + cpu.wrangler;
  return [
    int(n),
    label,
    (cpu.wallMs / 1000).toFixed(1),
    pct(cpu.inner, cpu.wallMs),
    pct(cpu.proxy, cpu.wallMs),
    pct(cpu.client, cpu.wallMs),
    pct(cpu.wrangler, cpu.wallMs),
    pct(cpu.irq, cpu.wallMs),
    pct(Math.max(0, cpu.machine - ours - cpu.irq), cpu.wallMs),
    pct(cpu.machine, cpu.wallMs),
    int(frames),
    usPer(cpu.inner, frames),
    usPer(cpu.proxy, frames),
    usPer(cpu.client, frames),
  ];
}

export function cpuSection(r) {
  const c = r.cfg;
  const rows = [];
  for (const st of r.stages) {
    const events = (c.writes + c.warmup) * st.n;
    if (st.changes?.ok) rows.push(cpuRow("writes one at a time", st.n, st.changes.value.cpu, events));
    if (st.broadcast?.ok) rows.push(cpuRow("broadcasts one at a time", st.n, st.broadcast.value.cpu, events));
    if (st.burst?.ok) rows.push(cpuRow("burst", st.n, st.burst.value.cpu, st.burst.value.received));
  }
  const load = r.loadavg ? r.loadavg.map((l) => l.toFixed(2)).join(" → ") : "–";
  return [
    "## Where the time goes",
    "",
    `CPU time during each phase as a share of one core over the phase's wall time (the machine has ${r.cores} cores: 100 % is one of them busy), and per frame delivered (warm-up included). Processes from /proc/<pid>/stat (10 ms ticks; "wrangler (Node)" is the rest of the server's process group), the Node client from \`process.cpuUsage()\`, the machine from /proc/stat; "kernel irq" is interrupt and softirq time (much of the loopback TCP work), "other processes" is whatever else ran on the machine meanwhile (1-minute load average at the start and at the end of the bench: ${load}). Where the whole machine nears ${r.cores * 100} %, the latencies above include waiting for a core.`,
    "",
    table(
      [
        "N",
        "phase",
        "wall s",
        "inner workerd",
        "proxy workerd",
        "Node client",
        "wrangler (Node)",
        "kernel irq",
        "other processes",
        "whole machine",
        "frames",
        "µs/frame inner",
        "µs/frame proxy",
        "µs/frame client",
      ],
      rows,
    ),
    "",
  ];
}

export function profileSection(r) {
  const c = r.cfg;
  const nMax = c.sizes[c.sizes.length - 1];
  const main = r.stages.find((s) => s.n === nMax);
  const row = (e) => {
    const a = p(e.changes.ackToRecv);
    const s = p(e.changes.sendToRecv);
    const b = p(e.broadcast.sendToRecv);
    return [
      e.name,
      `${sms(a.p50)} / ${sms(a.p99)}`,
      `${ms(s.p50)} / ${ms(s.p99)}`,
      `${ms(b.p50)} / ${ms(b.p99)}`,
      usPer(e.changes.cpu.inner, e.events),
      usPer(e.changes.cpu.proxy, e.events),
      usPer(e.changes.cpu.client, e.events),
      pct(e.changes.cpu.machine, e.changes.cpu.wallMs),
      int(e.changes.misses + e.broadcast.misses),
    ];
  };
  const rows = [];
  if (main?.changes?.ok && main.broadcast?.ok) {
    const events = (c.writes + c.warmup) * nMax;
    rows.push(row({ name: "via wrangler's proxy (the run above)", ...unwrap(main), events }));
  }
  for (const pr of r.profiles) {
    if (pr.run.ok)
      rows.push(row({ name: pr.name, ...pr.run.value, events: (c.profileWrites + c.warmup) * nMax }));
    else rows.push([pr.name, errorCell(pr.run.error)]);
  }
  return [
    `## The same fan-out at ${int(nMax)} subscribers, one thing changed`,
    "",
    `${c.profileWrites} writes and ${c.profileWrites} broadcasts one at a time (after ${c.warmup} warm-up ones), each variant on freshly opened sockets. Straight to the inner workerd skips wrangler's proxy for the sockets and the writes (production has no such proxy); permessage-deflate makes the server compress every frame once per socket.`,
    "",
    table(
      [
        "Variant",
        "write: ack → receipt p50 / p99 ms",
        "write: send → receipt p50 / p99 ms",
        "broadcast: send → receipt p50 / p99 ms",
        "µs/frame inner",
        "µs/frame proxy",
        "µs/frame client",
        "whole machine (writes)",
        "missed",
      ],
      rows,
    ),
    "",
    ...reading(r, main, nMax),
  ];
}

/** A few sentences that put the profile's figures side by side. */
function reading(r, main, nMax) {
  const c = r.cfg;
  if (!main?.changes?.ok || !main.broadcast?.ok) return [];
  const events = (c.writes + c.warmup) * nMax;
  const us = (cpuMs) => (1000 * cpuMs) / events;
  const ch = main.changes.value;
  const bc = main.broadcast.value;
  const out = [
    `At ${int(nMax)} subscribers through the proxy, each change frame cost the inner workerd ${us(ch.cpu.inner).toFixed(1)} µs of CPU against ${us(bc.cpu.inner).toFixed(1)} µs per broadcast frame (the WAL read, REST write and change encoding add the difference), wrangler's proxy ${us(ch.cpu.proxy).toFixed(1)} µs and this Node client ${us(ch.cpu.client).toFixed(1)} µs: one write's fan-out keeps the inner workerd busy about ${((us(ch.cpu.inner) * nMax) / 1000).toFixed(0)} ms, which bounds its last receipt from below.`,
  ];
  const [direct, deflate] = r.profiles.map((pr) => (pr.run.ok ? pr.run.value : null));
  const p99 = (v) => p(v.sendToRecv).p99;
  if (direct) {
    out.push(
      `Past the proxy, send → receipt p99 is ${ms(p99(direct.changes))} ms against ${ms(p99(ch))} ms through it (${ratio(p99(direct.changes), p99(ch))}).`,
    );
  }
  if (deflate) {
    out.push(
      `With permessage-deflate it is ${ms(p99(deflate.changes))} ms (${ratio(p99(deflate.changes), p99(ch))} of the uncompressed run; negotiated: \`${deflate.deflate || "none"}\`).`,
    );
  }
  return [out.join(" "), ""];
}
