// One sandbox: its state, a terminal, a code cell and its files.
import { call } from "./api.js";
import { cellSection } from "./cell.js";
import { errorBox, fill, h, statusBadge, when } from "./dom.js";
import { filesSection } from "./files.js";
import { terminateButton } from "./sandboxes.js";
import { terminalSection } from "./terminal.js";

export async function sandboxPage(container, sandboxId) {
  const sandbox = await call("GET", `/sandboxes/${sandboxId}`);
  const problem = h("div");
  const status = h("span", { id: "sandbox-status" }, statusBadge(sandbox.status));
  fill(container,
    h("p", {}, h("a", { href: "#/sandboxes" }, "← Sandboxes")),
    h("h1", {}, h("span", { class: "mono" }, sandbox.id), " ", status),
    h("p", { class: "muted" },
      `${sandbox.runtime} · ${sandbox.securityLevel} · ${sandbox.resources.cpu} CPU · `
      + `${sandbox.resources.memory} · created ${when(sandbox.createdAt)} · expires ${when(sandbox.expiresAt)}`),
    h("div", { class: "row" }, sandbox.status === "running"
      ? terminateButton(sandbox.id, (error) => {
        if (error) fill(problem, errorBox(error));
        else fill(status, statusBadge("terminated"));
      })
      : null),
    problem);
  if (sandbox.status !== "running") {
    container.append(h("p", { class: "notice" }, `This sandbox is ${sandbox.status}.`));
    return () => {};
  }
  const parts = [terminalSection(sandbox.id), cellSection(sandbox.id), filesSection(sandbox.id)];
  container.append(
    h("div", { class: "grid2" }, parts[0].element, parts[1].element),
    parts[2].element);
  for (const part of parts) part.start?.();
  return () => {
    for (const part of parts) part.stop();
  };
}
