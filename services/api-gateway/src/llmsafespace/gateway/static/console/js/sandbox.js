// One sandbox: its state, a terminal, a code cell and its files.
import { call } from "./api.js";
import { cellSection } from "./cell.js";
import { errorBox, fill, h, statusBadge, when } from "./dom.js";
import { filesSection } from "./files.js";
import { cpu, memory, terminateButton } from "./sandboxes.js";
import { terminalSection } from "./terminal.js";

const REFRESH_MS = 5000;

export async function sandboxPage(container, sandboxId) {
  const sandbox = await call("GET", `/sandboxes/${sandboxId}`);
  const problem = h("div");
  const status = h("span", { id: "sandbox-status" }, statusBadge(sandbox.status));
  const usage = h("span", { id: "sandbox-usage", class: "muted" });
  let timer = null;
  let ended = false; // terminated here, or the page was left: no more refreshes
  let parts = [];
  const live = h("div"); // the terminal, the cell and the files, while it runs
  const terminate = sandbox.status === "running"
    ? terminateButton(sandbox.id, (error) => {
      if (error) {
        fill(problem, errorBox(error));
        return;
      }
      end("terminated");
    })
    : null;

  /** It stopped running (terminated here or elsewhere, or expired): nothing to offer. */
  function end(state) {
    ended = true;
    clearTimeout(timer);
    for (const part of parts) part.stop();
    fill(status, statusBadge(state));
    fill(usage);
    terminate?.remove();
    fill(live, h("p", { class: "notice" }, `This sandbox is ${state}.`));
  }

  fill(container,
    h("p", {}, h("a", { href: "#/sandboxes" }, "← Sandboxes")),
    h("h1", {}, h("span", { class: "mono" }, sandbox.id), " ", status),
    h("p", { class: "muted" },
      `${sandbox.runtime} · ${sandbox.securityLevel} · ${sandbox.resources.cpu} CPU · `
      + `${sandbox.resources.memory} · created ${when(sandbox.createdAt)} · expires ${when(sandbox.expiresAt)}`),
    h("div", { class: "row" }, usage, terminate),
    problem,
    live);
  if (sandbox.status !== "running") {
    container.append(h("p", { class: "notice" }, `This sandbox is ${sandbox.status}.`));
    return () => {};
  }
  async function refresh() {
    try {
      const report = await call("GET", `/sandboxes/${sandboxId}/status`);
      if (ended) return;
      if (report.status !== "running") {
        end(report.status);
        return;
      }
      fill(status, statusBadge(report.status));
      fill(usage, `CPU ${cpu(report)} · memory ${memory(report)} · up ${Math.round(report.uptimeSeconds)} s`);
      timer = setTimeout(refresh, REFRESH_MS);
    } catch (error) {
      if (!ended) fill(problem, errorBox(error));
    }
  }
  refresh();
  parts = [terminalSection(sandbox.id), cellSection(sandbox.id, sandbox.runtime), filesSection(sandbox.id)];
  live.append(
    h("div", { class: "grid2" }, parts[0].element, parts[1].element),
    parts[2].element);
  for (const part of parts) part.start?.();
  return () => {
    ended = true;
    clearTimeout(timer);
    for (const part of parts) part.stop();
  };
}
