// Warm pools: each pool's sizes and conditions, refreshed while the page is open.
import { call } from "./api.js";
import { errorBox, fill, h, statusBadge, when } from "./dom.js";

const REFRESH_MS = 5000;

function conditions(list) {
  if (!list.length) return h("span", { class: "muted" }, "–");
  return h("ul", {}, list.map((c) => h("li", {},
    h("b", {}, c.type), " ", statusBadge(c.status),
    c.reason ? ` ${c.reason}` : "", c.message ? h("span", { class: "muted" }, ` — ${c.message}`) : "")));
}

export async function warmPoolsPage(container) {
  const problem = h("div");
  const rows = h("tbody");
  fill(container,
    h("h1", {}, "Warm pools"),
    h("p", { class: "muted" }, "Sandboxes started ahead of time, so that a matching create is a claim."),
    problem,
    h("table", { id: "warmpools" },
      h("thead", {}, h("tr", {},
        ["Pool", "Runtime", "Min–max", "Desired", "Available", "Assigned", "Pending", "Conditions", "Last scaled"]
          .map((t) => h("th", {}, t)))),
      rows));
  let timer = null;
  let stopped = false;

  async function refresh() {
    try {
      const { warmPools } = await call("GET", "/warmpools");
      if (stopped) return;
      fill(problem);
      fill(rows, warmPools.length ? warmPools.map((pool) => h("tr", { "data-pool": pool.name },
        h("td", { class: "mono" }, pool.name),
        h("td", {}, pool.spec.runtime),
        h("td", {}, `${pool.spec.minSize}–${pool.spec.maxSize}`),
        h("td", {}, pool.status.desiredPods),
        h("td", {}, pool.status.availablePods),
        h("td", {}, pool.status.assignedPods),
        h("td", {}, pool.status.pendingPods),
        h("td", {}, conditions(pool.status.conditions)),
        h("td", {}, when(pool.status.lastScaleTime))))
        : h("tr", {}, h("td", { colspan: 9, class: "muted" }, "No warm pools.")));
    } catch (error) {
      if (!stopped) fill(problem, errorBox(error));
    } finally {
      if (!stopped) timer = setTimeout(refresh, REFRESH_MS);
    }
  }
  await refresh();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
