// A small subset of Markdown as elements: headings, paragraphs, lists, code blocks, inline
// code, bold and italic. The text comes from code in the sandbox, so it only ever becomes
// text nodes (never HTML: a tag in it is shown as written); links stay as written too.
import { h } from "./dom.js";

const FENCE = /^\s*```/;
const HEADING = /^(#{1,6})\s+(.*)$/;
const BULLET = /^\s*[-*+]\s+(.*)$/;
const NUMBERED = /^\s*\d+[.)]\s+(.*)$/;
const STARTS = [FENCE, HEADING, BULLET, NUMBERED]; // a line that begins a block, ending a paragraph
const INLINE = /`([^`]+)`|\*\*(.+?)\*\*|\*(.+?)\*/g; // not `_`: it is in snake_case names

/** One line's text with its inline code, bold and italic. */
function inline(text) {
  const nodes = [];
  let last = 0;
  for (const match of text.matchAll(INLINE)) {
    const [whole, code, strong, emphasis] = match;
    nodes.push(text.slice(last, match.index));
    if (code !== undefined) nodes.push(h("code", {}, code));
    else if (strong !== undefined) nodes.push(h("strong", {}, strong));
    else nodes.push(h("em", {}, emphasis));
    last = match.index + whole.length;
  }
  nodes.push(text.slice(last));
  return nodes;
}

// Each reader returns [the block at lines[start], the line after it], or null if none is there.

function fenced(lines, start) {
  if (!FENCE.test(lines[start])) return null;
  let end = start + 1;
  while (end < lines.length && !FENCE.test(lines[end])) end += 1;
  return [h("pre", {}, h("code", {}, lines.slice(start + 1, end).join("\n"))), end + 1];
}

function heading(lines, start) {
  const match = lines[start].match(HEADING);
  return match && [h(`h${match[1].length}`, {}, inline(match[2])), start + 1];
}

function list(tag, item) {
  return (lines, start) => {
    let end = start;
    while (end < lines.length && item.test(lines[end])) end += 1;
    if (end === start) return null;
    const items = lines.slice(start, end).map((line) => h("li", {}, inline(line.match(item)[1])));
    return [h(tag, {}, items), end];
  };
}

function paragraph(lines, start) {
  let end = start + 1;
  while (end < lines.length && lines[end].trim() && !STARTS.some((p) => p.test(lines[end]))) end += 1;
  return [h("p", {}, inline(lines.slice(start, end).join(" "))), end];
}

const BLOCKS = [fenced, heading, list("ul", BULLET), list("ol", NUMBERED)];

/** The block at lines[start] (a paragraph unless another kind begins there), and the next line. */
function block(lines, start) {
  for (const read of BLOCKS) {
    const found = read(lines, start);
    if (found) return found;
  }
  return paragraph(lines, start);
}

/** Markdown text as a `div.markdown`. */
export function markdown(text) {
  const lines = text.split(/\r\n?|\n/);
  const blocks = [];
  let start = 0;
  while (start < lines.length) {
    if (!lines[start].trim()) {
      start += 1;
      continue;
    }
    const [element, next] = block(lines, start);
    blocks.push(element);
    start = next;
  }
  return h("div", { class: "markdown" }, blocks);
}
