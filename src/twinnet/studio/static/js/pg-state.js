// The playground's state: one plain object that round-trips through the URL.
// Defaults and choices come from the server (GET /api/playground/options); this file
// only turns the object into a query string and back.

export function toQuery(state, defaults) {
  const q = new URLSearchParams();
  for (const [key, value] of Object.entries(state)) {
    if (JSON.stringify(value) === JSON.stringify(defaults[key])) continue;  // keep links short
    if (key === "points") q.set(key, value.map((p) => p.join(",")).join(";"));
    else if (Array.isArray(value)) q.set(key, value.join(","));
    else q.set(key, String(value));
  }
  return q.toString();
}

// Parse the query string with the types of the defaults; a value that does not parse
// is kept as its text, so the server names it in its error message.
export function fromQuery(search, defaults) {
  const state = structuredClone(defaults);
  for (const [key, text] of new URLSearchParams(search)) {
    const d = defaults[key];
    if (key === "points") {
      state.points = text ? text.split(";").map((p) => p.split(",").map(Number)) : [];
    } else if (key === "hidden") {
      state.hidden = text ? text.split(",").map(asNumber) : [];
    } else if (Array.isArray(d)) {
      state[key] = text ? text.split(",") : [];
    } else if (typeof d === "number") {
      state[key] = asNumber(text);
    } else {
      state[key] = text;
    }
  }
  return state;
}

export function asNumber(text) {
  const t = String(text).trim();
  const n = Number(t);
  return t !== "" && Number.isFinite(n) ? n : t;
}

// class colours (TensorFlow Playground's orange and blue first)
export const CLASS_COLOURS = ["#f59322", "#0877bd", "#19a979", "#945ecf", "#e8c31c",
  "#13a4b4", "#d64550", "#6b8e23", "#8c564b", "#7f7f7f"];

export function hexToRgb(hex) {
  const n = parseInt(hex.slice(1), 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}

export function decodeB64(text) {
  const bin = atob(text);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

// a value t in [0, 1] of the range [lo, hi] -> rgb on a blue-white-orange scale centred at 0
export function divergingRgb(t, lo, hi) {
  const v = lo + (t / 255) * (hi - lo);
  const m = Math.max(Math.abs(lo), Math.abs(hi)) || 1;
  const a = Math.min(1, Math.abs(v) / m);
  const c = v >= 0 ? [245, 147, 34] : [8, 119, 189];
  return [255 + (c[0] - 255) * a, 255 + (c[1] - 255) * a, 255 + (c[2] - 255) * a];
}
