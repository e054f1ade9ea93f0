// A code cell: runs code (Python, or JavaScript in a node sandbox) or a shell command over the sandbox's `/stream` WebSocket and
// shows output as it arrives, with rich results (`display` messages) inline.
import { socket } from "./api.js";
import { fill, h } from "./dom.js";
import { markdown } from "./markdown.js";

const IMAGES = ["image/png", "image/jpeg", "image/gif"];
const RESUME_ATTEMPTS = 3;

function executionId() {
  const random = crypto.getRandomValues(new Uint8Array(12));
  return `exec-${Array.from(random, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

/** One MIME bundle as an element, in its richest form (text/plain, the repr, is always
 * there): images as data: URLs, SVG as an image (its scripts do not run), HTML in a
 * sandboxed frame without scripts, Markdown as text with its structure (never as HTML),
 * JSON pretty-printed, else the plain text. */
export function richResult(data) {
  const image = IMAGES.find((type) => data[type]);
  if (image) return h("img", { src: `data:${image};base64,${data[image]}`, alt: data["text/plain"] || "image" });
  if (data["image/svg+xml"]) {
    const svg = btoa(unescape(encodeURIComponent(data["image/svg+xml"])));
    return h("img", { src: `data:image/svg+xml;base64,${svg}`, alt: "SVG" });
  }
  if (data["text/html"]) {
    return h("iframe", { sandbox: "", srcdoc: data["text/html"], title: "HTML result" });
  }
  if (data["text/markdown"]) return markdown(data["text/markdown"]);
  if ("application/json" in data) {
    return h("pre", { class: "result json" }, JSON.stringify(data["application/json"], null, 2));
  }
  return h("pre", { class: "result" }, data["text/plain"] ?? JSON.stringify(data));
}

/** The language a sandbox's interpreter speaks, and a first line in it. */
export function language(runtime) {
  return runtime?.startsWith("node")
    ? { name: "JavaScript", example: "console.log('hello')" }
    : { name: "Python", example: "print('hello')" };
}

export function cellSection(sandboxId, runtime) {
  const spoken = language(runtime);
  const code = h("textarea", {
    name: "code", spellcheck: "false", class: "mono", placeholder: spoken.example,
  });
  const mode = h("select", { name: "mode" },
    h("option", { value: "code" }, spoken.name), h("option", { value: "command" }, "Shell"));
  const run = h("button", { type: "submit", class: "primary" }, "Run");
  const cancel = h("button", { type: "button", hidden: true }, "Cancel");
  const output = h("div", { class: "output", id: "cell-output", "aria-live": "polite" });
  const form = h("form", { class: "cell" },
    code, h("div", { class: "row" }, mode, run, cancel,
      h("span", { class: "muted" }, "Ctrl+Enter runs")));
  const element = h("section", {}, h("h2", {}, "Code"), form, output);
  let ws = null;
  let connected = null; // resolves to `ws` once it is open
  let running = null; // {id, displayed, lastSeq}
  let stopped = false;
  let stream = null; // the <pre> the last chunk went to, and its stream name

  function connection() {
    if (ws && ws.readyState <= WebSocket.OPEN) return connected;
    const opened = socket(`/sandboxes/${sandboxId}/stream`);
    ws = opened;
    opened.addEventListener("message", (event) => receive(JSON.parse(event.data)));
    let established = false;
    connected = new Promise((resolve, reject) => {
      opened.addEventListener("open", () => {
        established = true;
        resolve(opened);
      }, { once: true });
      opened.addEventListener("close", () => {
        if (!established) {
          reject(new Error("The server refused the connection (is the sandbox still running?)"));
        } else if (ws === opened && running && !stopped) {
          resume(running);
        }
      });
    });
    return connected;
  }

  /** The socket dropped mid-run: reconnect and replay what was missed (by `seq`). */
  async function resume(execution) {
    for (let attempt = 1; attempt <= RESUME_ATTEMPTS; attempt += 1) {
      await new Promise((resolve) => setTimeout(resolve, 500 * attempt));
      if (running !== execution || stopped) return;
      try {
        const open = await connection();
        open.send(JSON.stringify({ type: "resume", executionId: execution.id, lastSeq: execution.lastSeq }));
        return;
      } catch {
        // the next attempt waits longer
      }
    }
    if (running === execution) finish("The connection closed before the execution ended.", true);
  }

  function write(kind, text) {
    if (!stream || stream.kind !== kind) {
      stream = { kind, pre: h("pre", { class: kind }) };
      output.append(stream.pre);
    }
    stream.pre.append(text);
  }

  function show(node) {
    stream = null;
    output.append(node);
  }

  function finish(summary, failed) {
    show(h("div", { class: failed ? "summary error" : "summary" }, summary));
    running = null;
    run.disabled = false;
    cancel.hidden = true;
  }

  function receive(message) {
    if (!running || (message.executionId && message.executionId !== running.id)) return;
    if (typeof message.seq === "number") {
      if (message.seq <= running.lastSeq) return; // already shown before a resume
      running.lastSeq = message.seq;
    }
    if (message.type === "output") write(message.stream, message.content);
    else if (message.type === "display") {
      running.displayed = true;
      show(h("div", { class: "rich" }, richResult(message.data)));
    } else if (message.type === "execution_complete" || message.type === "execution_cancelled") {
      if (!running.displayed) {
        const results = message.results || [];
        if (results.length) for (const result of results) show(richResult(result.data));
        else if (message.result !== null && message.result !== undefined) show(h("pre", { class: "result" }, message.result));
      }
      if (message.error) {
        write("stderr", message.error.traceback || `${message.error.name}: ${message.error.value}`);
      }
      const failed = message.status !== "completed";
      finish(`${message.status} · exit ${message.exitCode} · ${Math.round(message.durationMs)} ms`, failed);
    } else if (message.type === "error") {
      finish(`${message.code}: ${message.message}`, true);
    }
  }

  async function execute() {
    if (running || !code.value.trim()) return;
    fill(output);
    stream = null;
    run.disabled = true;
    running = { id: executionId(), displayed: false, lastSeq: 0 };
    try {
      const open = await connection();
      open.send(JSON.stringify({
        type: "execute", executionId: running.id, mode: mode.value, content: code.value,
      }));
      cancel.hidden = false;
    } catch (error) {
      finish(error.message, true);
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    execute();
  });
  code.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      execute();
    }
  });
  cancel.addEventListener("click", () => {
    if (running) ws?.send(JSON.stringify({ type: "cancel", executionId: running.id }));
  });

  return {
    element,
    stop() {
      stopped = true;
      ws?.close();
    },
  };
}
