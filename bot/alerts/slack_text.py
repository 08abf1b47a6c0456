"""Flatten a Slack message (text, attachments, Block Kit) into bounded, decoded plain text.

Slack events come from many apps, each with its own idea of a message, so nothing here trusts a type:
anything that is not the expected shape is skipped. Every walk is bounded (characters, nodes, depth) so a
huge or adversarial payload costs the same as a normal one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

MAX_TEXT = 20_000  # characters of flattened text kept
TRUNCATED = " …[truncated]"
_MAX_READ = 4 * MAX_TEXT  # raw characters decoded per message: repeated lines are dropped, not free
_MAX_NODES = 4_000  # dicts/lists visited per message: 1 MB of junk stops here, not at the end
_MAX_DEPTH = 12  # rich_text nests lists in lists; real messages stay far below this
_MAX_URLS = 50

_BARE_URL = re.compile(r"(?<![<|])https?://[^\s<>|\"'`]{1,2000}")  # webhooks post field values unlinked
_ENTITY = re.compile(r"<([^<>\n]{1,2000})>")
_BOLD = re.compile(r"(?<![\w*])\*{1,2}([^*\n]{1,500})\*{1,2}(?![\w*])")  # *bold*, **bold** (Grafana)
_CODE = re.compile(r"`{1,3}")
_SPACES = re.compile(r"[ \t\r\f\v]+")
_HTML = (("&lt;", "<"), ("&gt;", ">"), ("&amp;", "&"))
# Buttons and menus say "Resolve", "Acknowledge": reading them would make every alert look resolved.
_RICH_REFS = {  # rich_text element type -> (key, marker)
    "user": ("user_id", "@"),
    "usergroup": ("usergroup_id", "@"),
    "broadcast": ("range", "@"),
    "channel": ("channel_id", "#"),
    "emoji": ("name", ":"),
}
_SKIPPED_BLOCKS = frozenset({"actions", "input", "image", "divider", "file", "video"})


@dataclass(slots=True)
class Flat:
    """A message as text plus the hints parsers detect a source by."""

    text: str
    urls: list[str] = field(default_factory=list)  # title links and linked URLs, in order
    colors: list[str] = field(default_factory=list)  # attachment colors, lowercased
    sender: str = ""  # username / bot profile / app names and footers, lowercased (detection hints)

    @property
    def head(self) -> str:
        """The first few lines, where every source puts its status and title."""
        return self.text[:600]


def _entity(match: re.Match[str], urls: list[str]) -> str:
    body = match.group(1)
    target, _, label = body.partition("|")
    if target[:1] == "@":  # <@U123> or <@U123|alice>
        return "@" + (label or target[1:])
    if target[:1] == "#":  # <#C123|incidents>
        return "#" + (label or target[1:])
    if target[:1] == "!":  # <!here>, <!subteam^S1|@sre>, <!date^123^{date}|Nov 26>
        special = target[1:].split("^", 1)[0]
        if label:
            return label
        return "@" + special if special in ("here", "channel", "everyone") else ""
    if target.startswith(("http://", "https://")) and len(urls) < _MAX_URLS:
        urls.append(target)
    if target.startswith("mailto:"):
        return label or target[7:]
    return label or target


def decode(raw: str, urls: list[str] | None = None) -> str:
    """Slack mrkdwn to plain text: entities to readable names, links to labels, escapes undone."""
    found = urls if urls is not None else []
    text = _ENTITY.sub(lambda m: _entity(m, found), raw)
    text = _CODE.sub("", _BOLD.sub(r"\1", text))
    for escaped, plain in _HTML:
        text = text.replace(escaped, plain)
    return text


class _Collector:
    """Accumulates decoded lines under one character budget and one node budget."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.seen: set[str] = set()
        self.size = 0
        self.nodes = 0
        self.urls: list[str] = []
        self.full = False
        self.rich_size = 0  # characters gathered from the current rich_text block
        self.read = 0  # raw characters decoded so far

    def add(self, value: Any, prefix: str = "") -> bool:
        """Add a string's decoded lines; False when it added nothing (not a string, empty, duplicate)."""
        if self.full or not isinstance(value, str) or not value or value.isspace():
            return False
        if self.read >= _MAX_READ:
            self._stop()
            return False
        # Slice before decoding so a 1 MB string costs what 40 kB do (links shrink when decoded: twice).
        raw = value[: min(2 * (MAX_TEXT - self.size) + 2_000, _MAX_READ - self.read)]
        self.read += len(raw)
        text = decode(raw, self.urls)
        cut = len(raw) < len(value)
        for url in _BARE_URL.findall(raw, 0, 5_000):
            self.url(url)
        added = False
        for line in text.split("\n"):
            line = _SPACES.sub(" ", line).strip()
            if not line:
                continue
            line = prefix + line
            if line in self.seen:  # apps repeat text, fallback and blocks verbatim
                continue
            self.seen.add(line)
            if self.size + len(line) + 1 > MAX_TEXT:
                self.lines.append(line[: max(0, MAX_TEXT - self.size)] + TRUNCATED)
                self.full = True
                return True
            self.lines.append(line)
            self.size += len(line) + 1
            added = True
        if cut:
            self._stop()
        return added

    def _stop(self) -> None:
        """Read no more, and say that something was left unread."""
        if self.lines and not self.full:
            self.lines[-1] += TRUNCATED
        self.full = True

    def visit(self) -> bool:
        """Count one node; False once the budget is spent."""
        self.nodes += 1
        return self.nodes <= _MAX_NODES and not self.full

    def url(self, value: Any) -> None:
        is_url = isinstance(value, str) and value.startswith(("http://", "https://"))
        if is_url and len(self.urls) < _MAX_URLS:
            self.urls.append(value[:2_000])


def _text_of(obj: Any) -> Any:
    """A Block Kit text object ({"type": "mrkdwn", "text": ...}) or a bare string."""
    return obj.get("text") if isinstance(obj, dict) else obj


def _rich(out: _Collector, element: Any, depth: int, parts: list[str]) -> None:
    """Rich text elements into ``parts`` (a paragraph is one line, not one line per styled run)."""
    if depth > _MAX_DEPTH or not out.visit() or out.rich_size > MAX_TEXT:
        return
    if isinstance(element, list):
        for item in element:
            _rich(out, item, depth + 1, parts)
        return
    if not isinstance(element, dict):
        return
    kind = element.get("type")
    kind = kind if isinstance(kind, str) else ""
    text = element.get("text")
    piece = None
    if kind == "text" and isinstance(text, str):
        piece = text[:MAX_TEXT]
    elif kind == "link":
        out.url(element.get("url"))
        piece = text[:MAX_TEXT] if isinstance(text, str) else str(element.get("url") or "")[:2_000]
    elif kind in _RICH_REFS:
        key, mark = _RICH_REFS[kind]
        piece = f"{mark}{str(element.get(key, ''))[:200]}{mark if kind == 'emoji' else ''}"
    if piece is not None:
        parts.append(piece)
        out.rich_size += len(piece)
    else:
        _rich(out, element.get("elements"), depth + 1, parts)
        # Sections, preformatted text and quotes are paragraphs: keep their line breaks.
        if kind in ("rich_text_section", "rich_text_preformatted", "rich_text_quote"):
            parts.append("\n")


def _blocks(out: _Collector, blocks: Any) -> None:
    if not isinstance(blocks, list):
        return
    for block in blocks:
        if not out.visit():
            return
        kind = block.get("type") if isinstance(block, dict) else None
        if not isinstance(block, dict) or not isinstance(kind, str) or kind in _SKIPPED_BLOCKS:
            continue
        if kind == "rich_text":
            parts: list[str] = []
            out.rich_size = 0
            _rich(out, block.get("elements"), 0, parts)
            out.add("".join(parts)[: MAX_TEXT + 1_000])
            continue
        out.add(_text_of(block.get("text")))
        for part in (block.get("fields"), block.get("elements") if kind == "context" else None):
            if isinstance(part, list):
                for item in part:
                    if not out.visit():
                        return
                    out.add(_text_of(item))


def _attachment(out: _Collector, att: Any) -> str:
    """One legacy attachment; returns its color (the source's own firing/resolved hint)."""
    if not isinstance(att, dict):
        return ""
    out.add(att.get("pretext"))
    out.add(att.get("author_name"))
    out.url(att.get("title_link"))
    wrote = out.add(att.get("title"))
    wrote = out.add(att.get("text")) or wrote
    fields = att.get("fields")
    if isinstance(fields, list):
        for item in fields:
            if not out.visit():
                break
            if isinstance(item, dict) and isinstance(item.get("value"), str):
                title = item.get("title")
                prefix = f"{decode(title[:100])}: " if isinstance(title, str) and title.strip() else ""
                wrote = out.add(item["value"], prefix) or wrote
    _blocks(out, att.get("blocks"))
    if not wrote:  # the fallback repeats the title; only worth reading when nothing else was there
        out.add(att.get("fallback"))
    out.add(att.get("footer"))
    color = att.get("color")
    return color.lower()[:20] if isinstance(color, str) else ""


def _sender(message: dict[str, Any]) -> str:
    names: list[str] = []
    for key in ("username", "app_name"):
        if isinstance(message.get(key), str):
            names.append(message[key])
    profile = message.get("bot_profile")
    if isinstance(profile, dict) and isinstance(profile.get("name"), str):
        names.append(profile["name"])
    attachments = message.get("attachments")
    for att in attachments[:20] if isinstance(attachments, list) else ():
        if isinstance(att, dict):
            keys = ("footer", "service_name", "author_name")
            names.extend(value for key in keys if isinstance(value := att.get(key), str))
    return " ".join(n[:200] for n in names).lower()


def flatten(message: Any) -> Flat:
    """The message as plain text (blocks, else top-level text; then attachments), never raising."""
    if not isinstance(message, dict):
        return Flat("")
    out = _Collector()
    _blocks(out, message.get("blocks"))
    if not out.lines:  # with blocks, Slack shows them and keeps ``text`` for notifications only
        out.add(message.get("text"))
    colors: list[str] = []
    attachments = message.get("attachments")
    if isinstance(attachments, list):
        for att in attachments:
            if not out.visit():
                break
            if color := _attachment(out, att):
                colors.append(color)
    return Flat("\n".join(out.lines), out.urls, colors, _sender(message))
