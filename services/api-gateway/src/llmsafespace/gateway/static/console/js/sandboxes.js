// Sandboxes: every live one of the caller's (status, runtime, age, CPU, memory), the newest
// ended ones on request; create, terminate.
import { call } from "./api.js";
import { age, bytes, errorBox, fill, h, statusBadge } from "./dom.js";

const REFRESH_MS = 3000;
export const LIVE = ["creating", "running", "paused"];
const ENDED = ["terminated", "failed"];
const PAGE = 100; // the most GET /sandboxes answers at once

/** A terminate button that asks for a second click first. */
export function terminateButton(sandboxId, onDone) {
  const button = h("button", { type: "button", class: "danger", "data-terminate": sandboxId }, "Terminate");
  let armed = false;
  button.addEventListener("click", async () => {
    if (!armed) {
      armed = true;
      button.textContent = "Confirm terminate";
      setTimeout(() => {
        armed = false;
        if (!button.disabled) button.textContent = "Terminate";
      }, 5000);
      return;
    }
    button.disabled = true;
    button.textContent = "Terminating…";
    try {
      await call("DELETE", `/sandboxes/${sandboxId}`);
      onDone(null);
    } catch (error) {
      button.disabled = false;
      button.textContent = "Terminate";
      onDone(error);
    }
  });
  return button;
}

export function cpu(report) {
  if (!report) return "–";
  if (report.cpuCores !== null && report.cpuCores !== undefined) return `${report.cpuCores.toFixed(2)} cores`;
  if (report.cpuMs !== null && report.cpuMs !== undefined) return `${(report.cpuMs / 1000).toFixed(1)} s`;
  return "–";
}

export function memory(report) {
  if (!report || report.memoryBytes === null || report.memoryBytes === undefined) return "–";
  const limit = report.memoryLimitBytes ? ` / ${bytes(report.memoryLimitBytes)}` : "";
  return bytes(report.memoryBytes) + limit;
}

/** Every sandbox with `status`, page after page: all of them, however many newer ones
 * there are in other states. */
async function everyWith(status) {
  const found = [];
  let total = Infinity;
  while (found.length < total) {
    const query = { status, limit: PAGE, offset: found.length };
    const { sandboxes, pagination } = await call("GET", "/sandboxes", { query });
    if (!sandboxes.length) break; // fewer than counted: some ended meanwhile
    found.push(...sandboxes);
    total = pagination.total;
  }
  return found;
}

/** The newest PAGE ended sandboxes (not all: they only accumulate), and how many ended. */
async function newestEnded() {
  const pages = await Promise.all(ENDED.map((status) => call("GET", "/sandboxes", { query: { status, limit: PAGE } })));
  return {
    sandboxes: newestFirst(pages.flatMap((page) => page.sandboxes)).slice(0, PAGE),
    total: pages.reduce((sum, page) => sum + page.pagination.total, 0),
  };
}

/** One row a sandbox (one that changed state between two requests is in both answers),
 * newest first. */
function newestFirst(sandboxes) {
  const unique = [...new Map(sandboxes.map((s) => [s.id, s])).values()];
  return unique.sort((a, b) => Date.parse(b.createdAt) - Date.parse(a.createdAt));
}

async function createForm(problem) {
  const [{ runtimes }, { profiles }] = await Promise.all([
    call("GET", "/runtimes"),
    call("GET", "/profiles"),
  ]);
  const runtime = h("select", { name: "runtime" },
    runtimes.map((r) => h("option", { value: r.id }, r.id)));
  const profile = h("select", { name: "profile" },
    h("option", { value: "" }, "(defaults)"),
    profiles.map((p) => h("option", { value: p.id, title: p.description }, p.id)));
  const timeout = h("input", { type: "number", name: "timeout", min: 1, max: 86400, value: "1800" });
  const submit = h("button", { type: "submit", class: "primary" }, "Create sandbox");
  return h("form", {
    class: "inline",
    onsubmit: async (event) => {
      event.preventDefault();
      submit.disabled = true;
      fill(problem);
      const chosen = profiles.find((p) => p.id === profile.value);
      const body = { runtime: runtime.value, timeout: Number(timeout.value) };
      if (chosen) Object.assign(body, { resources: chosen.resources, securityLevel: chosen.securityLevel });
      try {
        const sandbox = await call("POST", "/sandboxes", { json: body });
        location.hash = `#/sandboxes/${sandbox.id}`;
      } catch (error) {
        fill(problem, errorBox(error));
      } finally {
        submit.disabled = false;
      }
    },
  },
  h("label", {}, "Runtime", runtime),
  h("label", {}, "Profile", profile),
  h("label", {}, "Lifetime (s)", timeout),
  submit);
}

export async function sandboxesPage(container) {
  const problem = h("div");
  const rows = h("tbody");
  const listProblem = h("div");
  const showEnded = h("input", { type: "checkbox", name: "ended" });
  const endedNote = h("span", { id: "ended-note", class: "muted" });
  fill(container,
    h("h1", {}, "Sandboxes"),
    await createForm(problem),
    problem,
    h("div", { class: "row" }, h("label", { class: "checkbox" }, showEnded, "Show ended"), endedNote),
    listProblem,
    h("table", { id: "sandboxes" },
      h("thead", {}, h("tr", {},
        ["Sandbox", "Status", "Runtime", "Age", "CPU", "Memory", ""].map((t) => h("th", {}, t)))),
      rows));
  let timer = null;
  let stopped = false;
  let known = new Map(); // sandbox id → its row, kept across refreshes (a half-confirmed
  // terminate button survives them)

  function row(sandbox, report) {
    const element = known.get(sandbox.id) || h("tr", { "data-sandbox": sandbox.id },
      h("td", {}, h("a", { href: `#/sandboxes/${sandbox.id}`, class: "mono" }, sandbox.id)),
      h("td"), h("td"), h("td"), h("td"), h("td"), h("td"));
    const cells = element.children;
    fill(cells[1], statusBadge(sandbox.status));
    fill(cells[2], sandbox.runtime);
    fill(cells[3], age(sandbox.createdAt));
    fill(cells[4], cpu(report));
    fill(cells[5], memory(report));
    if (!LIVE.includes(sandbox.status)) fill(cells[6]);
    else if (!cells[6].firstChild) {
      fill(cells[6], terminateButton(sandbox.id,
        (error) => (error ? fill(listProblem, errorBox(error)) : refresh())));
    }
    return element;
  }

  async function refresh() {
    clearTimeout(timer);
    try {
      const [live, ended] = await Promise.all([
        Promise.all(LIVE.map(everyWith)),
        showEnded.checked ? newestEnded() : null,
      ]);
      const shown = newestFirst([...live.flat(), ...(ended?.sandboxes ?? [])]);
      const reports = await Promise.all(shown.map((s) => (s.status === "running"
        ? call("GET", `/sandboxes/${s.id}/status`).catch(() => null)
        : null)));
      if (stopped) return;
      fill(listProblem);
      fill(endedNote, ended && ended.total > ended.sandboxes.length
        ? `Showing the newest ${ended.sandboxes.length} of ${ended.total} ended sandboxes.`
        : null);
      const kept = new Map();
      shown.forEach((sandbox, i) => kept.set(sandbox.id, row(sandbox, reports[i])));
      for (const [id, element] of known) if (!kept.has(id)) element.remove();
      known = kept;
      fill(rows, shown.length
        ? [...kept.values()]
        : h("tr", {}, h("td", { colspan: 7, class: "muted" }, "No sandboxes.")));
    } catch (error) {
      if (!stopped) fill(listProblem, errorBox(error));
    } finally {
      clearTimeout(timer);
      if (!stopped) timer = setTimeout(refresh, REFRESH_MS);
    }
  }
  showEnded.addEventListener("change", refresh);
  await refresh();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
