// The playground's channel view: the emulated workspace's channels and threads, live; a composer that
// posts as a person or as an alert source and runs slash commands; reactions and the bot's controls,
// clicked as in Slack. Everything goes through /playground/api, which acts through the Slack emulator.

import { renderAttachments, renderBlocks } from "./blockkit.js";
import { api, el } from "./dom.js";
import { emoji, escapeHtml, mrkdwn } from "./mrkdwn.js";
import { showModels } from "./models.js";

const QUICK_REACTIONS = ["+1", "-1", "one", "two", "three"];
const state = {
  ws: null,
  me: "U0ALICE",
  channel: null,
  thread: null, // the open thread's parent ts
  data: null, // the current channel's messages, as the API returns them
  shown: "", // what is rendered, to skip identical re-renders (an open select keeps its state)
  names: { users: {}, channels: {} },
  drafts: {}, // source -> edited template
  unread: new Set(),
};

const $ = (id) => document.getElementById(id);

function showError(message) {
  const node = $("composer-error");
  node.textContent = message || "";
  if (message) setTimeout(() => { if (node.textContent === message) node.textContent = ""; }, 8000);
}

function time(ts) {
  const date = new Date(Number(ts) * 1000);
  return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

function initials(name) {
  return (name || "?").split(/\s+/).map((w) => w[0]).join("").slice(0, 2).toUpperCase();
}

function hue(name) {
  let h = 0;
  for (const c of name || "") h = (h * 31 + c.charCodeAt(0)) % 360;
  return h;
}

// --- rendering messages ------------------------------------------------------------------------------

function messageNode(m, inThread) {
  const author = m.author || { name: "unknown", kind: "person" };
  const node = el("div", {
    class: `message from-${author.kind}${m.ephemeral ? " ephemeral" : ""}`,
    "data-ts": m.ts,
    "data-testid": "message",
  });
  const avatar = el("div", { class: "avatar", style: `background: hsl(${hue(author.name)} 45% 45%)` }, escapeHtml(initials(author.name)));
  const body = el("div", { class: "message-body" });
  const header = el("div", { class: "message-header" });
  header.append(el("span", { class: "author" }, escapeHtml(author.name)));
  if (author.kind !== "person") header.append(el("span", { class: "badge" }, author.kind === "app" ? "APP" : "BOT"));
  header.append(el("span", { class: "time" }, time(m.ts)));
  if (m.edited) header.append(el("span", { class: "muted" }, "(edited)"));
  body.append(header);
  if (m.ephemeral) body.append(el("div", { class: "ephemeral-note" }, "👁 Only visible to you"));
  const ctx = { names: state.names, onAction: (action) => click(m, action) };
  if (Array.isArray(m.blocks) && m.blocks.length) body.append(renderBlocks(m.blocks, ctx));
  else if (m.text) body.append(el("div", { class: "message-text" }, mrkdwn(m.text, state.names)));
  if (Array.isArray(m.attachments) && m.attachments.length) body.append(renderAttachments(m.attachments, ctx));
  if (m.reactions && m.reactions.length) {
    const row = el("div", { class: "reactions" });
    for (const r of m.reactions) {
      const mine = r.users.includes(state.me);
      const pill = el("button", { type: "button", class: `reaction${mine ? " mine" : ""}`, "data-reaction": r.name, title: `:${r.name}:` },
        `${emoji(r.name)} <span class="count">${r.count}</span>`);
      pill.addEventListener("click", () => react(m, r.name, !mine));
      row.append(pill);
    }
    body.append(row);
  }
  if (!inThread && m.reply_count) {
    const link = el("button", { type: "button", class: "thread-link", "data-testid": "thread-link" },
      `${m.reply_count} ${m.reply_count === 1 ? "reply" : "replies"}`);
    link.addEventListener("click", () => openThread(m.ts));
    body.append(link);
  }
  node.append(avatar, body);
  if (!m.ephemeral) {
    const bar = el("div", { class: "toolbar" });
    for (const name of QUICK_REACTIONS) {
      const mine = (m.reactions || []).some((r) => r.name === name && r.users.includes(state.me));
      const b = el("button", { type: "button", "data-quick-reaction": name, title: `React :${name}:` }, emoji(name));
      b.addEventListener("click", () => react(m, name, !mine));
      bar.append(b);
    }
    if (!inThread) {
      const reply = el("button", { type: "button", "data-testid": "reply-in-thread", title: "Reply in thread" }, "💬");
      reply.addEventListener("click", () => openThread(m.ts));
      bar.append(reply);
    }
    node.append(bar);
  }
  return node;
}

function timeline() {
  const data = state.data;
  if (!data) return [];
  const ephemeral = data.ephemeral.filter((e) => !e.thread_ts).map((e) => ({ ...e, ephemeral: true }));
  return [...data.messages, ...ephemeral].sort((a, b) => (a.ts < b.ts ? -1 : a.ts > b.ts ? 1 : 0));
}

function render() {
  const key = JSON.stringify([state.data, state.thread, state.me]);
  if (key === state.shown) return;
  state.shown = key;
  const list = $("messages");
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  list.replaceChildren(...timeline().map((m) => messageNode(m, false)));
  if (!list.children.length) list.append(el("div", { class: "empty" }, "No messages yet. Post an alert below."));
  if (atBottom) list.scrollTop = list.scrollHeight;
  renderThread();
}

function renderThread() {
  const pane = $("thread");
  const parent = state.thread && state.data ? state.data.messages.find((m) => m.ts === state.thread) : null;
  if (!parent) {
    pane.hidden = true;
    return;
  }
  pane.hidden = false;
  $("thread-channel").textContent = `#${state.data.channel.name}`;
  const ephemeral = state.data.ephemeral.filter((e) => e.thread_ts === parent.ts).map((e) => ({ ...e, ephemeral: true }));
  const replies = [...parent.replies, ...ephemeral].sort((a, b) => (a.ts < b.ts ? -1 : 1));
  const list = $("thread-messages");
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  const divider = el("div", { class: "divider" }, `${parent.replies.length} ${parent.replies.length === 1 ? "reply" : "replies"}`);
  list.replaceChildren(messageNode(parent, true), divider, ...replies.map((m) => messageNode(m, true)));
  if (atBottom) list.scrollTop = list.scrollHeight;
}

function renderChannels() {
  const list = $("channels");
  list.replaceChildren(
    ...state.ws.channels.map((c) => {
      const item = el("li");
      const link = el("a", { href: `/#${c.name}`, class: `${c.id === state.channel ? "active" : ""} ${state.unread.has(c.id) ? "unread" : ""}`, "data-channel": c.id },
        `# ${escapeHtml(c.name)}${c.bot_member ? "" : ' <span class="muted" title="The bot is not in this channel">(no bot)</span>'}`);
      link.addEventListener("click", (event) => {
        event.preventDefault();
        if (location.pathname === "/") selectChannel(c.id);
        else {
          history.pushState(null, "", `/#${c.name}`);
          route();
        }
      });
      item.append(link);
      return item;
    }),
  );
}

// --- loading ---------------------------------------------------------------------------------------

let refreshing = null;
let again = false;

async function refresh() {
  if (!state.channel) return;
  if (refreshing) {
    again = true; // one more after this one, with whatever changed meanwhile
    return refreshing;
  }
  refreshing = (async () => {
    do {
      again = false;
      try {
        state.data = await api("GET", `/channels/${state.channel}/messages?viewer=${state.me}`);
        render();
      } catch (error) {
        showError(`Could not load the channel: ${error.message}`);
      }
    } while (again);
  })();
  try {
    await refreshing;
  } finally {
    refreshing = null;
  }
}

function selectChannel(id) {
  state.channel = id;
  state.thread = null;
  state.unread.delete(id);
  const channel = state.ws.channels.find((c) => c.id === id);
  $("channel-title").textContent = `# ${channel.name}`;
  $("composer-text").placeholder = `Message #${channel.name} — or /oncall-predict TEXT, /oncall-models status`;
  if (location.pathname === "/") history.replaceState(null, "", `/#${channel.name}`);
  renderChannels();
  state.shown = "";
  refresh();
}

function openThread(ts) {
  state.thread = ts;
  state.shown = "";
  render();
}

function connectLive() {
  const live = new EventSource("/playground/api/events");
  const status = $("connection");
  live.addEventListener("hello", () => {
    status.textContent = "● live";
    status.className = "connection live";
    refresh();
  });
  live.addEventListener("change", (event) => {
    const { channels } = JSON.parse(event.data);
    if (channels.includes(state.channel)) refresh();
    let marked = false;
    for (const id of channels) if (id !== state.channel && !state.unread.has(id)) { state.unread.add(id); marked = true; }
    if (marked) renderChannels();
  });
  live.onerror = () => {
    status.textContent = "○ reconnecting…";
    status.className = "connection";
  };
}

// --- acting --------------------------------------------------------------------------------------------

async function react(m, name, add) {
  try {
    await api(add ? "POST" : "DELETE", "/reactions", { user: state.me, channel: m.channel, ts: m.ts, name });
  } catch (error) {
    showError(`Reaction not added: ${error.message}`);
  }
}

async function click(m, action) {
  if (m.ephemeral) {
    showError("The playground does not send clicks on ephemeral messages.");
    return;
  }
  if (action.node) action.node.classList.add("pending");
  try {
    const interaction = await api("POST", "/clicks", {
      user: state.me, channel: m.channel, ts: m.ts, action_id: action.action_id, value: action.value,
    });
    if (interaction.ack_status !== 200) showError(`The bot did not acknowledge the click (${interaction.ack_error || interaction.ack_status}).`);
  } catch (error) {
    showError(`Click not sent: ${error.message}`);
  } finally {
    if (action.node) action.node.classList.remove("pending");
  }
}

function source() {
  const value = $("post-as").value;
  return value === "me" ? null : state.ws.templates.find((t) => t.source === value);
}

function fillComposer() {
  const template = source();
  const text = $("composer-text");
  $("reset-template").hidden = !template;
  if (template) {
    text.value = state.drafts[template.source] ?? JSON.stringify(template.body, null, 2);
    text.rows = 14;
    text.classList.add("json");
    $("composer-hint").textContent = `The JSON ${template.name} posts to the channel's incoming webhook. Edit it, then Send (Ctrl+Enter).`;
  } else {
    text.value = state.drafts.me ?? "";
    text.rows = 3;
    text.classList.remove("json");
    $("composer-hint").textContent = "Enter sends. Commands: /oncall-predict TEXT · /oncall-models status|history|reload|rollback";
  }
}

async function send(event) {
  event?.preventDefault();
  const text = $("composer-text");
  const template = source();
  const button = $("send");
  button.disabled = true;
  try {
    if (template) {
      let payload;
      try {
        payload = JSON.parse(text.value);
      } catch (error) {
        showError(`The ${template.name} payload is not valid JSON: ${error.message}`);
        return;
      }
      await api("POST", "/alerts", { source: template.source, channel: state.channel, payload });
      showError("");
      return;
    }
    const value = text.value.trim();
    if (!value) return;
    if (value.startsWith("/")) {
      const [command, ...rest] = value.split(/\s+/);
      if (!state.ws.commands.includes(command)) {
        showError(`${command} is not a command of this app. Try ${state.ws.commands.join(" or ")}.`);
        return;
      }
      await api("POST", "/commands", { user: state.me, channel: state.channel, command, text: value.slice(command.length).trim() });
    } else {
      await api("POST", "/messages", { user: state.me, channel: state.channel, text: value });
    }
    text.value = "";
    state.drafts.me = "";
    showError("");
  } catch (error) {
    showError(`Not sent: ${error.message}`);
  } finally {
    button.disabled = false;
  }
}

async function reply(event) {
  event.preventDefault();
  const text = $("thread-text");
  const value = text.value.trim();
  if (!value || !state.thread) return;
  try {
    await api("POST", "/messages", { user: state.me, channel: state.channel, text: value, thread_ts: state.thread });
    text.value = "";
  } catch (error) {
    showError(`Reply not sent: ${error.message}`);
  }
}

// --- pages ---------------------------------------------------------------------------------------------

function route() {
  const models = location.pathname === "/models";
  $("channel-view").hidden = models;
  $("models-view").hidden = !models;
  $("models-link").classList.toggle("active", models);
  if (models) {
    $("thread").hidden = true;
    showModels($("models-view"));
  } else {
    showModels(null);
    const name = decodeURIComponent(location.hash.slice(1));
    const channel = state.ws.channels.find((c) => c.name === name) || state.ws.channels[0];
    selectChannel(channel.id);
  }
}

async function main() {
  state.ws = await api("GET", "/workspace");
  for (const p of state.ws.people) state.names.users[p.id] = p.name;
  state.names.users[state.ws.bot.user_id] = state.ws.bot.name;
  for (const c of state.ws.channels) state.names.channels[c.id] = c.name;
  const me = $("me");
  for (const p of state.ws.people) me.append(el("option", { value: p.id }, `${escapeHtml(p.real_name)}${p.admin ? " (admin)" : ""}`));
  me.addEventListener("change", () => {
    state.me = me.value;
    fillPostAs();
    state.shown = "";
    refresh();
  });
  const postAs = $("post-as");
  const fillPostAs = () => {
    const chosen = postAs.value || "me";
    const person = state.ws.people.find((p) => p.id === state.me);
    postAs.replaceChildren(el("option", { value: "me" }, `${escapeHtml(person.real_name)} (you)`));
    const group = el("optgroup", { label: "Alert sources (incoming webhooks)" });
    for (const t of state.ws.templates) group.append(el("option", { value: t.source }, escapeHtml(t.name)));
    postAs.append(group);
    postAs.value = chosen;
  };
  fillPostAs();
  let previous = postAs.value;
  postAs.addEventListener("change", () => {
    state.drafts[previous] = $("composer-text").value;
    previous = postAs.value;
    fillComposer();
  });
  $("reset-template").addEventListener("click", () => {
    delete state.drafts[postAs.value];
    fillComposer();
  });
  fillComposer();
  $("composer").addEventListener("submit", send);
  $("composer-text").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey || (!source() && !event.shiftKey))) send(event);
  });
  $("thread-composer").addEventListener("submit", reply);
  $("close-thread").addEventListener("click", () => {
    state.thread = null;
    state.shown = "";
    render();
  });
  document.addEventListener("click", (event) => {
    const link = event.target.closest("a[data-link]");
    if (!link) return;
    event.preventDefault();
    history.pushState(null, "", link.getAttribute("href"));
    route();
  });
  window.addEventListener("popstate", route);
  window.addEventListener("hashchange", route);
  const reset = state.ws.history?.reset;  // the channels start empty although the store kept decisions
  $("history-reset").hidden = !reset;
  $("history-reset").textContent = reset || "";
  renderChannels(); // on every page: opened at /models directly, the sidebar still lists the channels
  route();
  document.body.dataset.ready = "true";
  connectLive();
}

main().catch((error) => {
  document.body.innerHTML = `<pre class="fatal">The playground could not start: ${escapeHtml(error.message)}</pre>`;
});
