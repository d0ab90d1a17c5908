//! A small immutable XML element model for stanzas: build with `x()`, serialize, parse one
//! RFC 7395 frame with the browser's DOMParser. It does not stream: every WebSocket frame is
//! one complete element.

export interface XEl {
  name: string;
  attrs: Record<string, string>;
  children: (XEl | string)[];
}

type Child = XEl | string | null | undefined | false | Child[];

/** Builds an element; null/false children are dropped, arrays flattened. */
export function x(name: string, attrs: Record<string, string | number | undefined | null> = {}, ...children: Child[]): XEl {
  const a: Record<string, string> = {};
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) a[k] = String(v);
  const out: (XEl | string)[] = [];
  const push = (c: Child) => {
    if (c === null || c === undefined || c === false) return;
    if (Array.isArray(c)) c.forEach(push);
    else out.push(c);
  };
  children.forEach(push);
  return { name, attrs: a, children: out };
}

export function escape(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&apos;" })[c] as string);
}

export function serialize(e: XEl): string {
  let s = `<${e.name}`;
  for (const [k, v] of Object.entries(e.attrs)) s += ` ${k}="${escape(v)}"`;
  if (e.children.length === 0) return s + "/>";
  s += ">";
  for (const c of e.children) s += typeof c === "string" ? escape(c) : serialize(c);
  return s + `</${e.name}>`;
}

/** Converts a DOM element; every element gets its namespace as `xmlns`. */
export function fromDom(el: Element): XEl {
  const attrs: Record<string, string> = {};
  if (el.namespaceURI) attrs.xmlns = el.namespaceURI;
  for (const a of Array.from(el.attributes)) {
    if (a.name === "xmlns" || a.name.startsWith("xmlns:")) continue;
    attrs[a.name] = a.value;
  }
  const children: (XEl | string)[] = [];
  for (const n of Array.from(el.childNodes)) {
    if (n.nodeType === 1) children.push(fromDom(n as Element));
    else if (n.nodeType === 3 || n.nodeType === 4) children.push(n.nodeValue ?? "");
  }
  return { name: el.localName, attrs, children };
}

/** Parses one complete element; null when it is not well-formed. */
export function parse(text: string): XEl | null {
  const doc = new DOMParser().parseFromString(text, "text/xml");
  const root = doc.documentElement;
  if (!root || root.getElementsByTagName("parsererror").length > 0 || root.localName === "parsererror") return null;
  return fromDom(root);
}

export function kids(e: XEl | undefined | null, name?: string, ns?: string): XEl[] {
  if (!e) return [];
  return e.children.filter(
    (c): c is XEl => typeof c !== "string" && (name === undefined || c.name === name) && (ns === undefined || c.attrs.xmlns === ns),
  );
}

export function kid(e: XEl | undefined | null, name: string, ns?: string): XEl | undefined {
  return kids(e, name, ns)[0];
}

export function text(e: XEl | undefined | null): string {
  if (!e) return "";
  return e.children.map((c) => (typeof c === "string" ? c : text(c))).join("");
}

/** Walks a path of child names, e.g. path(iq, "query", "item"). */
export function path(e: XEl | undefined | null, ...names: string[]): XEl | undefined {
  let cur: XEl | undefined = e ?? undefined;
  for (const n of names) cur = kid(cur, n);
  return cur;
}
