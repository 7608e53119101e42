// DOM and formatting helpers shared by the views. Text is always set
// through textContent, never parsed as HTML, so data from the server
// cannot inject markup.

// el creates an element with attributes and children. An attribute whose
// value is false, null or undefined is left out; true sets it empty.
// Children may be strings, nodes, or null (skipped).
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === false || value === null || value === undefined) continue;
    if (name === 'dataset') {
      Object.assign(node.dataset, value);
    } else if (name === 'text') {
      node.textContent = value;
    } else {
      node.setAttribute(name, value === true ? '' : String(value));
    }
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

// replaceChildren swaps the children of parent, keeping keyboard focus
// on the element with the same data-focus-key when there is one, so a
// live refresh does not throw a keyboard user back to the page's start.
export function replaceChildren(parent, ...children) {
  const active = document.activeElement;
  const key = active && parent.contains(active) ? active.dataset.focusKey : undefined;
  parent.replaceChildren(...children);
  if (key) {
    const next = parent.querySelector(`[data-focus-key="${CSS.escape(key)}"]`);
    if (next) next.focus();
  }
}

// formatDuration writes milliseconds as "340 ms", "12.3 s", "4 min 5 s"
// or "2 h 3 min".
export function formatDuration(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return '';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  const totalSeconds = Math.round(s);
  const minutes = Math.floor(totalSeconds / 60);
  if (minutes < 60) return `${minutes} min ${totalSeconds % 60} s`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

// formatTime writes an RFC 3339 timestamp as local time, with the date
// only when it is not today.
export function formatTime(text) {
  if (!text) return '';
  const t = new Date(text);
  const now = new Date();
  if (t.toDateString() === now.toDateString()) return t.toLocaleTimeString();
  return t.toLocaleString();
}

// since returns the milliseconds from an RFC 3339 timestamp to until, an
// RFC 3339 timestamp or null for now.
export function since(text, until) {
  if (!text) return null;
  const end = until ? Date.parse(until) : Date.now();
  return Math.max(0, end - Date.parse(text));
}

// shortID returns the last 8 characters of a UUIDv7 job id, the part
// that differs between jobs submitted close together.
export function shortID(id) {
  return id ? id.slice(-8) : '';
}

// formatValue writes a result cell or parameter value as text.
export function formatValue(value) {
  if (value === null || value === undefined) return '';
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

// formatCell writes a result cell as text, with fractions rounded to
// four decimal places; full is the unrounded text for a tooltip.
export function formatCell(value) {
  const full = formatValue(value);
  if (typeof value !== 'number' || Number.isInteger(value)) return { text: full, full };
  return { text: String(Number(value.toFixed(4))), full };
}

// formatBytes writes a byte count with binary units, such as "1.5 GiB".
export function formatBytes(n) {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i === 0 ? Math.round(n) : n.toFixed(1)} ${units[i]}`;
}

// plural returns "1 job" or "2 jobs".
export function plural(n, word) {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}
