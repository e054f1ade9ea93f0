// Building the page from elements (never from HTML strings: API data is always text).

const PROPERTIES = new Set(["value", "checked", "disabled", "hidden", "srcdoc", "title"]);

/** h("a", {href: "#/x", onclick: f}, "text", child, [more]) */
export function h(tag, props = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (name === "class") element.className = value;
    else if (PROPERTIES.has(name)) element[name] = value;
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  append(element, children);
  return element;
}

export function append(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

/** Replaces an element's children. */
export function fill(element, ...children) {
  element.replaceChildren();
  return append(element, children);
}

/** The message a person should read for a failure (the API's own, when it sent one),
 * with each field the API named and what is wrong with it (unless the message says so). */
export function errorBox(error) {
  const message = error?.message || String(error);
  const fields = Object.entries(error?.details?.fields ?? {})
    .filter(([, problem]) => !message.includes(String(problem)));
  return h("div", { class: "error", role: "alert" },
    h("p", {}, message),
    fields.length
      ? h("ul", {}, fields.map(([field, problem]) => h("li", {}, h("b", {}, field), `: ${problem}`)))
      : null);
}

export function bytes(count) {
  if (count === null || count === undefined) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = count;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${unit ? value.toFixed(1) : value} ${units[unit]}`;
}

export function age(iso) {
  const seconds = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m ${seconds % 60}s`;
  return `${Math.floor(seconds / 3600)}h ${Math.floor((seconds % 3600) / 60)}m`;
}

export function when(iso) {
  return iso ? new Date(iso).toLocaleString() : "–";
}

export function statusBadge(status) {
  return h("span", { class: `status status-${status}` }, status);
}
