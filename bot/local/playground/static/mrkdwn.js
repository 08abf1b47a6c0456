// Slack's mrkdwn to safe HTML. Everything a sender wrote is escaped first; only the markup Slack itself
// understands becomes tags: *bold*, _italic_, ~strike~, `code`, ```pre```, > quotes, <url|links>,
// <@U…> and <#C…|name> mentions, <!here>, and :emoji: shortcodes.

const EMOJI = {
  "+1": "👍", thumbsup: "👍", "-1": "👎", thumbsdown: "👎", one: "1️⃣", two: "2️⃣", three: "3️⃣",
  red_circle: "🔴", large_orange_circle: "🟠", large_yellow_circle: "🟡", large_green_circle: "🟢",
  white_circle: "⚪", warning: "⚠️", construction: "🚧", mag: "🔍", pencil2: "✏️", x: "❌",
  white_check_mark: "✅", heavy_check_mark: "✔️", rocket: "🚀", rewind: "⏪", test_tube: "🧪",
  stop_button: "⏹️", arrow_up: "⬆️", link: "🔗", timestamp: "🕒", fire: "🔥", eyes: "👀",
  rotating_light: "🚨", tada: "🎉", bell: "🔔", memo: "📝",
};

export function emoji(name) {
  return EMOJI[name] || `:${name}:`;
}

export function escapeHtml(text) {
  return String(text)
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&#39;");
}

// Slack escapes only these three in message text.
function unslack(text) {
  return text.replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&");
}

function safeUrl(url) {
  return /^(https?:|mailto:)/i.test(url) ? url : null;
}

function special(inner, names) {
  const [target, label] = splitOnce(inner, "|");
  if (target.startsWith("@")) {
    const id = target.slice(1);
    return `<span class="mention">@${escapeHtml(label || names.users[id] || id)}</span>`;
  }
  if (target.startsWith("#")) {
    const id = target.slice(1);
    return `<span class="mention">#${escapeHtml(label || names.channels[id] || id)}</span>`;
  }
  if (target.startsWith("!")) {
    const word = target.slice(1).split("^")[0];
    return `<span class="mention">@${escapeHtml(label || word)}</span>`;
  }
  const url = safeUrl(unslack(target));
  const shown = escapeHtml(unslack(label || target));
  if (!url) return shown;
  return `<a href="${escapeHtml(url)}" target="_blank" rel="noopener noreferrer">${shown}</a>`;
}

function splitOnce(text, sep) {
  const at = text.indexOf(sep);
  return at < 0 ? [text, ""] : [text.slice(0, at), text.slice(at + 1)];
}

const EDGE_BEFORE = "(^|[\\s(\\[{\"'\u0001])";
const EDGE_AFTER = "(?=$|[\\s)\\]}.,!?:;\"'\u0001])";

function styleInline(html) {
  const rules = [
    ["\\*", "b"],
    ["_", "i"],
    ["~", "s"],
  ];
  for (const [mark, tag] of rules) {
    const re = new RegExp(`${EDGE_BEFORE}${mark}([^${mark === "\\*" ? "*" : mark}\\n]+?)${mark}${EDGE_AFTER}`, "g");
    html = html.replace(re, `$1<${tag}>$2</${tag}>`);
  }
  return html.replace(/:([a-z0-9_+'-]+):/g, (all, name) => (EMOJI[name] ? EMOJI[name] : all));
}

// names: {users: {id: name}, channels: {id: name}}
export function mrkdwn(text, names = { users: {}, channels: {} }) {
  const held = [];
  const hold = (html) => `\u0001${held.push(html) - 1}\u0001`;
  let src = String(text ?? "").replace(/[\u0001]/g, "");
  src = src.replace(/```([\s\S]*?)```/g, (_, code) => hold(`<pre>${escapeHtml(unslack(code.replace(/^\n/, "")))}</pre>`));
  src = src.replace(/`([^`\n]+)`/g, (_, code) => hold(`<code>${escapeHtml(unslack(code))}</code>`));
  src = src.replace(/<([^<>\n]+)>/g, (_, inner) => hold(special(inner, names)));
  let html = escapeHtml(unslack(src));
  html = html
    .split("\n")
    .map((line) => (line.startsWith("&gt; ") || line === "&gt;" ? `<blockquote>${line.slice(5)}</blockquote>` : line))
    .join("\n");
  html = styleInline(html).replace(/\n/g, "<br>");
  html = html.replace(/<\/blockquote><br><blockquote>/g, "<br>");
  return html.replace(/\u0001(\d+)\u0001/g, (_, i) => held[Number(i)]);
}

// Slack's plain_text, with emoji shortcodes when `emoji` is on (the default).
export function plainText(obj) {
  if (!obj) return "";
  const text = escapeHtml(obj.text ?? "");
  return obj.emoji === false ? text : text.replace(/:([a-z0-9_+'-]+):/g, (all, name) => EMOJI[name] || all);
}

export function textObject(obj, names) {
  if (!obj) return "";
  return obj.type === "mrkdwn" ? mrkdwn(obj.text, names) : plainText(obj);
}
