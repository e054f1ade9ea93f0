// An xterm.js terminal on the sandbox's PTY WebSocket (`/terminal`): input and resize
// out; output, exit and errors in. A dropped socket re-attaches with the scrollback.
import { FitAddon } from "../vendor/addon-fit.js";
import { Terminal } from "../vendor/xterm.js";
import { socket } from "./api.js";
import { fill, h } from "./dom.js";

const PING_MS = 25000;
const MAX_INPUT_CHARS = 16 * 1024; // the API's limit for one `input` message, in characters

/** Input as messages the API accepts: a paste can be any size, and each message holds
 * at most MAX_INPUT_CHARS characters (code points, so no surrogate pair is split). */
function inputMessages(data) {
  const characters = Array.from(data);
  const messages = [];
  for (let start = 0; start < characters.length; start += MAX_INPUT_CHARS) {
    messages.push({ type: "input", data: characters.slice(start, start + MAX_INPUT_CHARS).join("") });
  }
  return messages;
}

export function terminalSection(sandboxId) {
  const screen = h("div", { class: "terminal", id: "terminal" });
  const state = h("span", { class: "muted state", id: "terminal-state" }, "connecting…");
  const reconnect = h("button", { type: "button", hidden: true }, "Reconnect");
  const element = h("section", {},
    h("h2", {}, "Terminal ", state, " ", reconnect), screen);
  const terminal = new Terminal({ cursorBlink: true, fontSize: 13, convertEol: false, scrollback: 5000 });
  const fit = new FitAddon();
  terminal.loadAddon(fit);
  let ws = null;
  let terminalId = null;
  let exited = false;
  let stopped = false;
  let pinger = null;

  const send = (message) => ws?.readyState === WebSocket.OPEN && ws.send(JSON.stringify(message));
  const show = (text) => fill(state, text);

  function connect() {
    reconnect.hidden = true;
    show("connecting…");
    const opened = socket(`/sandboxes/${sandboxId}/terminal`,
      { cols: terminal.cols, rows: terminal.rows, terminalId });
    ws = opened;
    let ready = false;
    const reattaching = terminalId !== null; // the server replays the scrollback first
    opened.addEventListener("message", (event) => {
      const message = JSON.parse(event.data);
      if (message.type === "ready") {
        ready = true;
        if (reattaching) terminal.reset();
        terminalId = message.terminalId;
        screen.hidden = false;
        fit.fit();
        show("connected");
        // Take the keyboard only if nobody is typing elsewhere (the code cell, a form).
        const busy = document.activeElement;
        if (!busy || busy === document.body) terminal.focus();
      } else if (message.type === "output") {
        terminal.write(message.data);
      } else if (message.type === "exit") {
        exited = true;
        terminal.write(`\r\n[process exited with code ${message.exitCode}]\r\n`);
        show(`exited (${message.exitCode})`);
      } else if (message.type === "error") {
        terminal.write(`\r\n[${message.code}: ${message.message}]\r\n`);
      }
    });
    opened.addEventListener("close", () => {
      if (stopped || ws !== opened) return;
      if (!ready) {
        show("unavailable: the server refused the terminal connection");
        if (!terminalId) screen.hidden = true;
      } else if (!exited) {
        show("disconnected");
      }
      // after an exit the state already says so
      if (exited) terminalId = null;
      exited = false;
      reconnect.textContent = terminalId ? "Reconnect" : "New terminal";
      reconnect.hidden = false;
    });
  }

  terminal.onData((data) => inputMessages(data).forEach(send));
  terminal.onResize(({ cols, rows }) => send({ type: "resize", cols, rows }));
  reconnect.addEventListener("click", connect);
  const resized = () => fit.fit();

  return {
    element,
    start() {
      terminal.open(screen);
      fit.fit();
      window.addEventListener("resize", resized);
      pinger = setInterval(() => send({ type: "ping" }), PING_MS);
      connect();
    },
    stop() {
      stopped = true;
      clearInterval(pinger);
      window.removeEventListener("resize", resized);
      ws?.close();
      terminal.dispose();
    },
  };
}
