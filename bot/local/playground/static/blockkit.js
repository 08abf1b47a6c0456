// Block Kit and legacy attachments to DOM, as Slack's client lays them out: section (text, fields,
// accessory), context, actions (buttons, static selects, overflow), header, divider, image, rich_text;
// attachments with their colour bar, title, text, fields and footer. Interactive elements call `onAction`
// with what Slack would send: the action_id and the button's value or the option picked.

import { el } from "./dom.js";
import { escapeHtml, mrkdwn, plainText, textObject } from "./mrkdwn.js";

function imageUrl(url) {
  // Only images this machine serves: the playground runs offline and must not call out.
  return typeof url === "string" && url.startsWith("/") ? url : null;
}

function button(element, ctx) {
  const node = el("button", {
    class: `bk-button ${element.style ? `bk-${element.style}` : ""}`,
    "data-action-id": element.action_id,
    type: "button",
  }, plainText(element.text));
  if (element.value !== undefined) node.dataset.value = element.value;
  node.addEventListener("click", () => {
    if (element.url && /^https?:/.test(element.url)) window.open(element.url, "_blank", "noopener");
    ctx.onAction({ action_id: element.action_id, value: element.value ?? null, node });
  });
  return node;
}

function staticSelect(element, ctx) {
  const select = el("select", { class: "bk-select", "data-action-id": element.action_id });
  const placeholder = el("option", { value: "", disabled: "", selected: "" }, plainText(element.placeholder) || "Select an item");
  select.append(placeholder);
  const addOptions = (parent, options) => {
    for (const option of options || []) {
      parent.append(el("option", { value: option.value }, plainText(option.text)));
    }
  };
  if (element.option_groups) {
    for (const group of element.option_groups) {
      const node = el("optgroup", { label: group.label?.text || "" });
      addOptions(node, group.options);
      select.append(node);
    }
  } else {
    addOptions(select, element.options);
  }
  if (element.initial_option) select.value = element.initial_option.value;
  select.addEventListener("change", () => {
    ctx.onAction({ action_id: element.action_id, value: select.value, node: select });
  });
  return select;
}

function overflow(element, ctx) {
  const select = el("select", { class: "bk-select bk-overflow", "data-action-id": element.action_id, title: "More actions" });
  select.append(el("option", { value: "", selected: "" }, "⋯"));
  for (const option of element.options || []) select.append(el("option", { value: option.value }, plainText(option.text)));
  select.addEventListener("change", () => ctx.onAction({ action_id: element.action_id, value: select.value, node: select }));
  return select;
}

function element(elementSpec, ctx) {
  switch (elementSpec.type) {
    case "button":
      return button(elementSpec, ctx);
    case "static_select":
      return staticSelect(elementSpec, ctx);
    case "overflow":
      return overflow(elementSpec, ctx);
    case "image": {
      const src = imageUrl(elementSpec.image_url);
      return src ? el("img", { class: "bk-image-small", src, alt: elementSpec.alt_text || "" }) : el("span", { class: "bk-alt" }, escapeHtml(elementSpec.alt_text || ""));
    }
    case "mrkdwn":
    case "plain_text":
      return el("span", { class: "bk-text" }, textObject(elementSpec, ctx.names));
    default:
      return el("span", { class: "bk-unsupported" }, `[${escapeHtml(elementSpec.type || "element")}]`);
  }
}

function richText(block, ctx) {
  const node = el("div", { class: "bk-rich" });
  const inline = (items) =>
    (items || [])
      .map((item) => {
        if (item.type === "text") {
          let html = escapeHtml(item.text || "").replace(/\n/g, "<br>");
          const s = item.style || {};
          if (s.code) html = `<code>${html}</code>`;
          if (s.bold) html = `<b>${html}</b>`;
          if (s.italic) html = `<i>${html}</i>`;
          if (s.strike) html = `<s>${html}</s>`;
          return html;
        }
        if (item.type === "link" && /^https?:/.test(item.url || "")) {
          return `<a href="${escapeHtml(item.url)}" target="_blank" rel="noopener noreferrer">${escapeHtml(item.text || item.url)}</a>`;
        }
        if (item.type === "user") return `<span class="mention">@${escapeHtml(ctx.names.users[item.user_id] || item.user_id)}</span>`;
        if (item.type === "channel") return `<span class="mention">#${escapeHtml(ctx.names.channels[item.channel_id] || item.channel_id)}</span>`;
        if (item.type === "emoji") return mrkdwn(`:${item.name}:`);
        return "";
      })
      .join("");
  for (const part of block.elements || []) {
    if (part.type === "rich_text_section") node.append(el("div", {}, inline(part.elements)));
    else if (part.type === "rich_text_preformatted") node.append(el("pre", {}, inline(part.elements)));
    else if (part.type === "rich_text_quote") node.append(el("blockquote", {}, inline(part.elements)));
    else if (part.type === "rich_text_list") {
      const list = el(part.style === "ordered" ? "ol" : "ul");
      for (const item of part.elements || []) list.append(el("li", {}, inline(item.elements)));
      node.append(list);
    }
  }
  return node;
}

function block(spec, ctx) {
  const attrs = { class: `bk-block bk-${spec.type}`, "data-block-id": spec.block_id };
  switch (spec.type) {
    case "section": {
      const node = el("div", attrs);
      const body = el("div", { class: "bk-section-body" });
      if (spec.text) body.append(el("div", { class: "bk-section-text" }, textObject(spec.text, ctx.names)));
      if (spec.fields) {
        const fields = el("div", { class: "bk-fields" });
        for (const field of spec.fields) fields.append(el("div", { class: "bk-field" }, textObject(field, ctx.names)));
        body.append(fields);
      }
      node.append(body);
      if (spec.accessory) {
        const accessory = el("div", { class: "bk-accessory" });
        accessory.append(element(spec.accessory, ctx));
        node.append(accessory);
      }
      return node;
    }
    case "context": {
      const node = el("div", attrs);
      for (const item of spec.elements || []) node.append(element(item, ctx));
      return node;
    }
    case "actions": {
      const node = el("div", attrs);
      for (const item of spec.elements || []) node.append(element(item, ctx));
      return node;
    }
    case "header":
      return el("div", attrs, plainText(spec.text));
    case "divider":
      return el("hr", attrs);
    case "image": {
      const node = el("div", attrs);
      if (spec.title) node.append(el("div", { class: "bk-image-title" }, plainText(spec.title)));
      const src = imageUrl(spec.image_url);
      node.append(src ? el("img", { src, alt: spec.alt_text || "" }) : el("div", { class: "bk-alt" }, `🖼 ${escapeHtml(spec.alt_text || "image")}`));
      return node;
    }
    case "rich_text":
      return richText(spec, ctx);
    default:
      return el("div", { class: "bk-unsupported" }, `[unsupported block: ${escapeHtml(spec.type || "?")}]`);
  }
}

export function renderBlocks(blocks, ctx) {
  const node = el("div", { class: "bk-blocks" });
  for (const spec of blocks || []) {
    if (spec && typeof spec === "object") node.append(block(spec, ctx));
  }
  return node;
}

const COLORS = { good: "#2eb67d", warning: "#ecb22e", danger: "#e01e5a" };

export function renderAttachments(attachments, ctx) {
  const wrap = el("div", { class: "bk-attachments" });
  for (const a of attachments || []) {
    if (!a || typeof a !== "object") continue;
    const color = COLORS[a.color] || (/^#?[0-9a-f]{6}$/i.test(a.color || "") ? `#${a.color.replace("#", "")}` : "#dddddd");
    const node = el("div", { class: "bk-attachment", style: `border-left-color: ${color}` });
    if (a.pretext) node.append(el("div", { class: "bk-pretext" }, mrkdwn(a.pretext, ctx.names)));
    if (a.author_name) node.append(el("div", { class: "bk-author" }, escapeHtml(a.author_name)));
    if (a.title) {
      const title = a.title_link && /^https?:/.test(a.title_link)
        ? `<a href="${escapeHtml(a.title_link)}" target="_blank" rel="noopener noreferrer">${escapeHtml(a.title)}</a>`
        : escapeHtml(a.title);
      node.append(el("div", { class: "bk-att-title" }, title));
    }
    if (a.text) node.append(el("div", { class: "bk-att-text" }, mrkdwn(a.text, ctx.names)));
    if (a.fields && a.fields.length) {
      const fields = el("div", { class: "bk-att-fields" });
      for (const f of a.fields) {
        const field = el("div", { class: `bk-att-field ${f.short ? "short" : ""}` });
        field.append(el("div", { class: "bk-att-field-title" }, escapeHtml(f.title || "")));
        field.append(el("div", {}, mrkdwn(f.value || "", ctx.names)));
        fields.append(field);
      }
      node.append(fields);
    }
    if (a.blocks) node.append(renderBlocks(a.blocks, ctx));
    if (a.footer) node.append(el("div", { class: "bk-footer" }, mrkdwn(a.footer, ctx.names)));
    if (!a.title && !a.text && !a.fields && !a.blocks && a.fallback) node.append(el("div", {}, escapeHtml(a.fallback)));
    wrap.append(node);
  }
  return wrap;
}
