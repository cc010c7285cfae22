// One job's page: the loss chart (uPlot) and the status fed by the job's event stream.
// Each SSE message carries the events appended since the last one; its id is the byte
// offset in events.jsonl, so a reconnect resumes where it stopped.
"use strict";

(function () {
  const box = document.getElementById("loss-chart");
  const initial = JSON.parse(document.getElementById("chart-data").textContent);
  const steps = initial.steps.slice();
  const loss = initial.loss.slice();
  const evalAt = new Map(initial.eval.map(([step, value]) => [step, value]));
  const timings = [];
  window.llmEng = Object.assign(window.llmEng || {}, { chartUpdates: timings });

  function aligned() {
    const xs = steps.slice();
    for (const step of evalAt.keys()) if (!xs.includes(step)) xs.push(step);
    xs.sort((a, b) => a - b);
    const byStep = new Map(steps.map((s, i) => [s, loss[i]]));
    return [xs, xs.map((s) => (byStep.has(s) ? byStep.get(s) : null)),
      xs.map((s) => (evalAt.has(s) ? evalAt.get(s) : null))];
  }

  const width = () => Math.max(320, box.clientWidth || 640);
  const chart = new uPlot({
    width: width(), height: 280,
    scales: { x: { time: false } },
    axes: [{ label: "step" }, { label: "loss" }],
    series: [
      { label: "step" },
      { label: "train loss", stroke: "#2563eb", width: 2, spanGaps: true },
      { label: "held-out loss", stroke: "#dc2626", width: 2, spanGaps: true,
        points: { show: true, size: 6 } },
    ],
  }, aligned(), box);
  window.addEventListener("resize", () => chart.setSize({ width: width(), height: 280 }));

  const field = (name, text) => {
    document.querySelectorAll(`[data-field="${name}"]`).forEach((el) => { el.textContent = text; });
  };
  const duration = (s) => {
    if (s === null || s === undefined) return "–";
    s = Math.max(0, Math.round(s));
    if (s < 60) return `${s} s`;
    const m = Math.floor(s / 60);
    return m < 60 ? `${m} min ${s % 60} s` : `${Math.floor(m / 60)} h ${m % 60} min`;
  };
  const details = (event) => Object.keys(event).sort()
    .filter((k) => k !== "t" && k !== "event")
    .map((k) => `${k}=${typeof event[k] === "string" ? event[k] : JSON.stringify(event[k])}`)
    .join("  ");

  const table = document.querySelector("#events tbody");
  function addRow(event) {
    const row = document.createElement("tr");
    const when = new Date((event.t || 0) * 1000);
    for (const text of [when.toLocaleString("sv-SE"), event.event, null]) {
      const cell = document.createElement("td");
      if (text === null) {
        const code = document.createElement("code");
        code.textContent = details(event);
        cell.appendChild(code);
      } else {
        cell.textContent = text;
      }
      row.appendChild(cell);
    }
    table.insertBefore(row, table.firstChild);
    while (table.rows.length > 100) table.deleteRow(table.rows.length - 1);
  }

  function apply(events) {
    let stepped = null;
    for (const event of events) {
      if (event.event === "step") {
        steps.push(event.step);
        loss.push(event.loss);
        stepped = event;
      } else if (event.event === "eval" && event.eval_loss !== undefined) {
        evalAt.set(event.step, event.eval_loss);
        field("eval_loss", event.eval_loss.toFixed(4));
      }
      if (event.event !== "step" || events.length < 20) addRow(event);
    }
    if (stepped) {
      field("step", String(stepped.step));
      field("total", String(stepped.total));
      field("loss", stepped.loss.toFixed(4));
      field("eta", duration(stepped.eta_s));
      field("tokens_per_s", String(Math.round(stepped.tokens_per_s)));
      const bar = document.getElementById("job-progress");
      if (bar) { bar.max = stepped.total || 1; bar.value = stepped.step; }
    }
    chart.setData(aligned());
    box.dataset.points = String(steps.length);
    box.dataset.evalPoints = String(evalAt.size);
    box.dataset.lastStep = String(steps.length ? steps[steps.length - 1] : 0);
    if (stepped) timings.push({ step: stepped.step, t: stepped.t, shown: Date.now() });
    if (timings.length > 1000) timings.splice(0, timings.length - 1000);
  }

  if (["validating", "queued", "running"].includes(initial.status)) {
    const url = `${box.dataset.stream}?offset=${initial.offset}&status=${encodeURIComponent(initial.status)}`;
    const source = new EventSource(url);
    source.addEventListener("events", (e) => apply(JSON.parse(e.data)));
    source.addEventListener("status", (e) => {
      const section = document.getElementById("job-status");
      section.innerHTML = e.data;
      if (window.htmx) window.htmx.process(section);
    });
    source.addEventListener("end", () => source.close());
    window.addEventListener("beforeunload", () => source.close());
  }
})();
