// What every page part shares: calling the playground's API, and making elements.

// A JSON call to /playground/api; an error carries the server's `detail` (one clear sentence).
export async function api(method, path, body) {
  const response = await fetch(`/playground/api${path}`, {
    method,
    headers: body === undefined ? {} : { "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(data.detail || data.error || `HTTP ${response.status}`);
  return data;
}

// An element with attributes (null and undefined ones left out) and, optionally, HTML that the caller has
// already escaped.
export function el(tag, attrs = {}, html) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value !== undefined && value !== null) node.setAttribute(key, value);
  }
  if (html !== undefined) node.innerHTML = html;
  return node;
}
