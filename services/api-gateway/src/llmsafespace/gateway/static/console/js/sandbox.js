// One sandbox: its state, a terminal, a code cell and its files; pause, resume, terminate.
import { call } from "./api.js";
import { cellSection } from "./cell.js";
import { errorBox, fill, h, statusBadge, when } from "./dom.js";
import { filesSection } from "./files.js";
import { cpu, LIVE, memory, terminateButton } from "./sandboxes.js";
import { terminalSection } from "./terminal.js";

const REFRESH_MS = 5000;

export async function sandboxPage(container, sandboxId) {
  const sandbox = await call("GET", `/sandboxes/${sandboxId}`);
  const problem = h("div");
  const status = h("span", { id: "sandbox-status" });
  const usage = h("span", { id: "sandbox-usage", class: "muted" });
  const details = h("p", { class: "muted" });
  const actions = h("span", { class: "actions" });
  const live = h("div"); // the terminal, the cell and the files while it runs, else a notice
  let shown = null; // the state the page is laid out for
  let left = false;
  let timer = null;
  let moves = 0; // transitions made here: a status read before the last one is stale
  let parts = [];
  // one button for every live state, so that a first (arming) click survives a change
  const terminate = terminateButton(sandbox.id, (error) => {
    if (error) fill(problem, errorBox(error));
    else show("terminated");
  });

  /** A button that moves the sandbox to another state (`pause`, `resume`) and shows it. */
  function transition(action, label, busy) {
    const button = h("button", { type: "button", [`data-${action}`]: sandbox.id }, label);
    button.addEventListener("click", async () => {
      button.disabled = true;
      button.textContent = busy;
      fill(problem);
      try {
        const after = await call("POST", `/sandboxes/${sandbox.id}/${action}`);
        moves += 1;
        if (left) return;
        describe(after); // resuming moves its expiry
        show(after.status);
      } catch (error) {
        button.disabled = false;
        button.textContent = label;
        fill(problem, errorBox(error));
      }
    });
    return button;
  }

  function describe(current) {
    fill(details,
      `${current.runtime} · ${current.securityLevel} · ${current.resources.cpu} CPU · `
      + `${current.resources.memory} · created ${when(current.createdAt)} · expires ${when(current.expiresAt)}`);
  }

  function stopParts() {
    for (const part of parts) part.stop();
    parts = [];
  }

  function startParts() {
    parts = [terminalSection(sandbox.id), cellSection(sandbox.id, sandbox.runtime), filesSection(sandbox.id)];
    fill(live,
      h("div", { class: "grid2" }, parts[0].element, parts[1].element),
      parts[2].element);
    for (const part of parts) part.start?.();
  }

  /** Lays the page out for `state`: the tools while it runs, Resume while paused, nothing
   * to run otherwise; once it has ended (here or elsewhere, or expired), nothing at all. */
  function show(state) {
    if (state === shown || (shown && !LIVE.includes(shown))) return;
    shown = state;
    fill(status, statusBadge(state));
    fill(usage);
    stopParts();
    if (state === "running") {
      fill(actions, transition("pause", "Pause", "Pausing…"), terminate);
      startParts();
      return;
    }
    fill(live, h("p", { class: "notice" }, `This sandbox is ${state}.`));
    if (state === "paused") fill(actions, transition("resume", "Resume", "Resuming…"), terminate);
    else if (LIVE.includes(state)) fill(actions, terminate);
    else {
      fill(actions);
      clearTimeout(timer);
    }
  }

  async function refresh() {
    const before = moves;
    try {
      const report = await call("GET", `/sandboxes/${sandboxId}/status`);
      if (left) return;
      if (before === moves) show(report.status);
      if (shown === "running" && report.status === "running") {
        fill(usage, `CPU ${cpu(report)} · memory ${memory(report)} · up ${Math.round(report.uptimeSeconds)} s`);
      }
      if (LIVE.includes(shown)) timer = setTimeout(refresh, REFRESH_MS);
    } catch (error) {
      if (!left) fill(problem, errorBox(error));
    }
  }

  fill(container,
    h("p", {}, h("a", { href: "#/sandboxes" }, "← Sandboxes")),
    h("h1", {}, h("span", { class: "mono" }, sandbox.id), " ", status),
    details,
    h("div", { class: "row" }, usage, actions),
    problem,
    live);
  describe(sandbox);
  show(sandbox.status);
  if (LIVE.includes(shown)) refresh();
  return () => {
    left = true;
    clearTimeout(timer);
    stopParts();
  };
}
