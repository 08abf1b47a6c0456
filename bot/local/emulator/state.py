"""The emulated workspace in memory: team, users, the bot, channels, messages with threads and reactions.

Every method takes one re-entrant lock and never awaits, so the state stays consistent whether it is
changed from the server's event loop or from another thread (a test, the playground). Whoever watches
(the playground's live view) registers in `watchers`: each change calls them with the channel's id.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bot.local.emulator.errors import SlackApiError

TEAM_ID = "T0EMULATOR"
TEAM_DOMAIN = "emulator"
TEAM_NAME = "Emulated Workspace"

_TS = re.compile(r"^\d{10}\.\d{6}$")
_REACTION = re.compile(r"^[a-z0-9_+'-]{1,100}$")


def is_ts(value: object) -> bool:
    """A Slack message timestamp: ten digits, a dot, six digits."""
    return isinstance(value, str) and bool(_TS.match(value))


@dataclass
class User:
    id: str
    name: str
    real_name: str
    is_admin: bool = False
    bot_id: str | None = None  # set for the bot's own user

    def to_api(self) -> dict[str, Any]:
        profile = {
            "real_name": self.real_name,
            "display_name": self.name,
            "real_name_normalized": self.real_name,
            "display_name_normalized": self.name,
            "email": None if self.bot_id else f"{self.name}@{TEAM_DOMAIN}.example",
            "image_48": f"https://avatars.{TEAM_DOMAIN}.example/{self.id}_48.png",
            "team": TEAM_ID,
        }
        if self.bot_id:
            profile["bot_id"] = self.bot_id
        return {
            "id": self.id,
            "team_id": TEAM_ID,
            "name": self.name,
            "deleted": False,
            "real_name": self.real_name,
            "tz": "Etc/UTC",
            "tz_label": "Coordinated Universal Time",
            "tz_offset": 0,
            "profile": profile,
            "is_admin": self.is_admin,
            "is_owner": self.is_admin,
            "is_primary_owner": False,
            "is_restricted": False,
            "is_ultra_restricted": False,
            "is_bot": self.bot_id is not None,
            "is_app_user": False,
            "updated": 1732600000,
        }


@dataclass
class Bot:
    """A bot identity: the app's bot user, or the bot behind an incoming webhook (no user)."""

    id: str
    app_id: str
    name: str
    user_id: str | None = None

    def to_api(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "deleted": False,
            "name": self.name,
            "updated": 1732600000,
            "app_id": self.app_id,
            "icons": {
                f"image_{n}": f"https://avatars.{TEAM_DOMAIN}.example/{self.id}_{n}.png" for n in (36, 48, 72)
            },
        }
        if self.user_id:
            out["user_id"] = self.user_id
        return out

    def profile(self) -> dict[str, Any]:
        """The `bot_profile` Slack attaches to an app's messages."""
        api = self.to_api()
        return {k: api[k] for k in ("id", "deleted", "name", "updated", "app_id", "icons")} | {
            "team_id": TEAM_ID
        }


@dataclass
class Channel:
    id: str
    name: str
    created: int
    members: set[str] = field(default_factory=set)
    is_general: bool = False
    is_archived: bool = False
    topic: str = ""
    purpose: str = ""

    def to_api(self, viewer: str | None = None) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "is_channel": True,
            "is_group": False,
            "is_im": False,
            "is_mpim": False,
            "is_private": False,
            "created": self.created,
            "is_archived": self.is_archived,
            "is_general": self.is_general,
            "unlinked": 0,
            "name_normalized": self.name,
            "is_shared": False,
            "is_org_shared": False,
            "is_ext_shared": False,
            "is_pending_ext_shared": False,
            "context_team_id": TEAM_ID,
            "creator": "U0ALICE",
            "is_member": viewer in self.members,
            "topic": {"value": self.topic, "creator": "", "last_set": 0},
            "purpose": {"value": self.purpose, "creator": "", "last_set": 0},
            "num_members": len(self.members),
        }


@dataclass
class Message:
    channel: str
    ts: str
    text: str
    user: str | None = None
    bot_id: str | None = None
    subtype: str | None = None
    thread_ts: str | None = None
    parent_user_id: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)  # blocks, attachments, username, icons, app_id, ...
    replies: list[str] = field(default_factory=list)  # ts of the thread's replies, oldest first
    reply_users: list[str] = field(default_factory=list)
    reactions: dict[str, list[str]] = field(default_factory=dict)  # name -> users, in reaction order

    @property
    def author(self) -> str | None:
        return self.user or self.bot_id

    @property
    def is_reply(self) -> bool:
        return self.thread_ts is not None and self.thread_ts != self.ts

    def to_api(self, summary: bool = True) -> dict[str, Any]:
        """The message as conversations.history / chat.postMessage return it; without `summary` (the
        thread's reply counts and the reactions) as events carry it."""
        out: dict[str, Any] = {"type": "message"}
        if self.subtype:
            out["subtype"] = self.subtype
        out["ts"] = self.ts
        if self.user:
            out["user"] = self.user
        if self.bot_id:
            out["bot_id"] = self.bot_id
        out["text"] = self.text
        out.update(self.fields)
        if self.thread_ts:
            out["thread_ts"] = self.thread_ts
        if self.parent_user_id:
            out["parent_user_id"] = self.parent_user_id
        if summary and self.replies:
            out |= {
                "reply_count": len(self.replies),
                "reply_users_count": len(self.reply_users),
                "latest_reply": self.replies[-1],
                "reply_users": list(self.reply_users),
                "is_locked": False,
                "subscribed": False,
            }
        if summary and self.reactions:
            out["reactions"] = [
                {"name": name, "users": list(users), "count": len(users)}
                for name, users in self.reactions.items()
            ]
        return out


def _rich_text(text: str) -> list[dict[str, Any]]:
    """The rich_text block Slack's clients attach to what a person types."""
    section = {"type": "rich_text_section", "elements": [{"type": "text", "text": text}]}
    return [{"type": "rich_text", "block_id": uuid.uuid4().hex[:5], "elements": [section]}]


class Workspace:
    """One team: three people (Alice is an admin), the app's bot user, and three public channels."""

    def __init__(self, bot_name: str = "oncall-agent") -> None:
        self._lock = threading.RLock()
        self._last_us = 0
        self.bot = Bot(id="B0ONCALLBOT", app_id="A0ONCALLAPP", name=bot_name, user_id="U0ONCALLBOT")
        self.bots: dict[str, Bot] = {self.bot.id: self.bot}
        self.users: dict[str, User] = {
            u.id: u
            for u in (
                User("U0ALICE", "alice", "Alice Admin", is_admin=True),
                User("U0BOB", "bob", "Bob Builder"),
                User("U0CAROL", "carol", "Carol Oncall"),
                User(self.bot.user_id or "", bot_name, bot_name, bot_id=self.bot.id),
            )
        }
        humans = {u for u, user in self.users.items() if not user.bot_id}
        created = 1732600000
        self.channels: dict[str, Channel] = {
            c.id: c
            for c in (
                Channel("C0INCIDENTS", "incidents", created, humans | {self.bot.user_id or ""}),
                Channel("C0ALERTSPROD", "alerts-prod", created, humans | {self.bot.user_id or ""}),
                Channel("C0GENERAL", "general", created, set(humans), is_general=True),
            )
        }
        self._messages: dict[str, dict[str, Message]] = {c: {} for c in self.channels}
        self.ephemeral: list[dict[str, Any]] = []
        self.home_views: dict[str, dict[str, Any]] = {}
        self.watchers: list[Callable[[str], None]] = []

    def _changed(self, channel: str) -> None:
        for watcher in self.watchers:
            watcher(channel)

    def add_channel(self, name: str) -> Channel:
        """A new public channel with everyone in it, the bot included (benchmarks spread load over many)."""
        with self._lock:
            if any(c.name == name for c in self.channels.values()):
                raise ValueError(f"a channel named {name!r} exists")
            channel = Channel(f"C{uuid.uuid4().hex[:10].upper()}", name, int(time.time()), set(self.users))
            self.channels[channel.id] = channel
            self._messages[channel.id] = {}
            self._changed(channel.id)
            return channel

    # --- look-ups -------------------------------------------------------------------------------

    def next_ts(self) -> str:
        """A fresh message timestamp: wall-clock microseconds, strictly increasing."""
        with self._lock:
            self._last_us = max(time.time_ns() // 1000, self._last_us + 1)
            return f"{self._last_us // 1_000_000}.{self._last_us % 1_000_000:06d}"

    def channel(self, ref: object) -> Channel:
        """A channel by id, or by name with or without '#' (chat.postMessage accepts both)."""
        with self._lock:
            if isinstance(ref, str):
                if ref in self.channels:
                    return self.channels[ref]
                name = ref.removeprefix("#")
                for channel in self.channels.values():
                    if channel.name == name:
                        return channel
            raise SlackApiError(
                "channel_not_found", f"no channel {ref!r} (channels: {self._channel_names()})"
            )

    def _channel_names(self) -> str:
        return ", ".join(f"{c.id} #{c.name}" for c in self.channels.values())

    def user(self, user_id: object) -> User:
        with self._lock:
            if isinstance(user_id, str) and user_id in self.users:
                return self.users[user_id]
            raise SlackApiError("user_not_found", f"no user {user_id!r}")

    def human(self, ref: object) -> User:
        """A person by id or name ('alice', '@alice', 'U0ALICE'): who may post from the control API."""
        with self._lock:
            if isinstance(ref, str):
                name = ref.removeprefix("@")
                for user in self.users.values():
                    if not user.bot_id and name in (user.id, user.name):
                        return user
            people = ", ".join(f"{u.id} {u.name}" for u in self.users.values() if not u.bot_id)
            raise SlackApiError("user_not_found", f"no person {ref!r} (people: {people})")

    def message(self, channel: str, ts: object) -> Message:
        with self._lock:
            found = self._messages.get(channel, {}).get(ts) if isinstance(ts, str) else None
            if found is None:
                raise SlackApiError("message_not_found", f"no message {ts!r} in {channel}")
            return found

    def top_level(self, channel: str) -> list[Message]:
        """The channel's own messages (thread parents and broadcast replies), oldest first."""
        with self._lock:
            return [
                m
                for m in self._messages[channel].values()
                if not m.is_reply or m.subtype == "thread_broadcast"
            ]

    def thread(self, channel: str, ts: str) -> list[Message]:
        """The parent and its replies, oldest first; a message without replies is a thread of one."""
        with self._lock:
            parent = self._messages[channel].get(ts)
            if parent is None or parent.is_reply:
                raise SlackApiError("thread_not_found")
            return [parent, *(self._messages[channel][r] for r in parent.replies)]

    # --- changes --------------------------------------------------------------------------------

    def join(self, channel: str, user: str) -> bool:
        """Adds a member; False when already in the channel."""
        with self._lock:
            members = self.channels[channel].members
            if user in members:
                return False
            members.add(user)
            self._changed(channel)
            return True

    def new_bot(self, name: str) -> Bot:
        """A bot without a user, as an incoming webhook's app has."""
        with self._lock:
            n = len(self.bots)
            bot = Bot(id=f"B0WEBHOOK{n:02d}", app_id=f"A0WEBHOOK{n:02d}", name=name)
            self.bots[bot.id] = bot
            return bot

    def add_message(
        self,
        channel: str,
        text: str,
        *,
        user: str | None = None,
        bot_id: str | None = None,
        subtype: str | None = None,
        thread_ts: str | None = None,
        broadcast: bool = False,
        **fields: Any,
    ) -> Message:
        """Stores a message. A thread_ts naming no message in the channel leaves an orphan reply, as on
        Slack: the call succeeds but the reply is in no thread and not in the channel's history."""
        with self._lock:
            messages = self._messages[channel]
            ts = self.next_ts()
            if user is not None and bot_id is None and subtype is None:
                fields = {"client_msg_id": str(uuid.uuid4()), "blocks": _rich_text(text)} | fields
            fields.setdefault("team", TEAM_ID)
            parent = messages.get(thread_ts) if thread_ts else None
            if parent is not None and parent.is_reply:
                parent = None
            message = Message(
                channel=channel,
                ts=ts,
                text=text,
                user=user,
                bot_id=bot_id,
                subtype="thread_broadcast" if broadcast and parent else subtype,
                thread_ts=thread_ts,
                parent_user_id=parent.author if parent else None,
                fields=fields,
            )
            messages[ts] = message
            if parent is not None:
                parent.thread_ts = parent.ts
                parent.replies.append(ts)
                author = message.author or ""
                if author not in parent.reply_users:
                    parent.reply_users.append(author)
            self._changed(channel)
            return message

    def post_as_bot(self, channel: str, text: str, **kwargs: Any) -> Message:
        """A message from the app's bot user, shaped as Slack shapes an app's messages (no subtype)."""
        bot = self.bot
        return self.add_message(
            channel,
            text,
            user=bot.user_id,
            bot_id=bot.id,
            app_id=bot.app_id,
            bot_profile=bot.profile(),
            **kwargs,
        )

    def update_message(
        self, channel: str, ts: str, text: str, editor: str, **fields: Any
    ) -> tuple[Message, Message]:
        """Replaces text and content fields; returns (before, after). Only the author may edit."""
        with self._lock:
            message = self.message(channel, ts)
            if editor not in (message.user, message.bot_id):
                raise SlackApiError("cant_update_message")
            before = Message(**{**message.__dict__, "fields": dict(message.fields)})
            message.text = text
            for key, value in fields.items():
                if value is None:
                    message.fields.pop(key, None)
                else:
                    message.fields[key] = value
            message.fields["edited"] = {"user": message.user or message.bot_id, "ts": self.next_ts()}
            self._changed(channel)
            return before, message

    def delete_message(self, channel: str, ts: str, deleter: str) -> Message:
        """Removes a message (a parent with replies stays as a tombstone, as on Slack); returns it."""
        with self._lock:
            message = self.message(channel, ts)
            deleter_user = self.users.get(deleter)
            if deleter not in (message.user, message.bot_id) and not (deleter_user and deleter_user.is_admin):
                raise SlackApiError("cant_delete_message")
            messages = self._messages[channel]
            if message.replies:
                tombstone = Message(
                    channel,
                    ts,
                    "This message was deleted.",
                    user="USLACKBOT",
                    subtype="tombstone",
                    thread_ts=ts,
                    fields={"hidden": True},
                    replies=message.replies,
                    reply_users=message.reply_users,
                )
                messages[ts] = tombstone
            else:
                del messages[ts]
                parent = messages.get(message.thread_ts or "") if message.is_reply else None
                if parent is not None:
                    parent.replies.remove(ts)
            self._changed(channel)
            return message

    def add_reaction(self, channel: str, ts: str, name: str, user: str) -> Message:
        with self._lock:
            if not _REACTION.match(name):
                raise SlackApiError("invalid_name")
            message = self.message(channel, ts)
            users = message.reactions.setdefault(name, [])
            if user in users:
                raise SlackApiError("already_reacted")
            users.append(user)
            self._changed(channel)
            return message

    def remove_reaction(self, channel: str, ts: str, name: str, user: str) -> Message:
        with self._lock:
            message = self.message(channel, ts)
            users = message.reactions.get(name, [])
            if user not in users:
                raise SlackApiError("no_reaction")
            users.remove(user)
            if not users:
                del message.reactions[name]
            self._changed(channel)
            return message

    def add_ephemeral(self, channel: str, user: str, **content: Any) -> dict[str, Any]:
        """A message only `user` sees (chat.postEphemeral, an ephemeral command response)."""
        with self._lock:
            message = {"channel": channel, "user": user, "ts": self.next_ts(), **content}
            self.ephemeral.append(message)
            self._changed(channel)
            return message

    # --- kept across restarts -------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """What a person saw in the channels, as plain JSON (for `bot.local.emulator.history`): the channels
        and their members, the webhooks' bots, every message with its thread and reactions. Not the ephemeral
        messages, which Slack does not keep either."""
        with self._lock:
            return {
                "channels": [{**c.__dict__, "members": sorted(c.members)} for c in self.channels.values()],
                "bots": [b.__dict__.copy() for b in self.bots.values() if b.id != self.bot.id],
                "messages": {
                    channel: [
                        {
                            **m.__dict__,
                            "fields": dict(m.fields),
                            "replies": list(m.replies),
                            "reply_users": list(m.reply_users),
                            "reactions": {name: list(users) for name, users in m.reactions.items()},
                        }
                        for m in messages.values()
                    ]
                    for channel, messages in self._messages.items()
                },
            }

    def restore(self, data: dict[str, Any]) -> int:
        """Puts back what `snapshot` saved (into a workspace nothing has happened in yet); the number of
        messages. Raises ValueError (KeyError, TypeError) for data of another shape, changing nothing."""
        channels = [Channel(**{**c, "members": set(c["members"])}) for c in data["channels"]]
        bots = [Bot(**b) for b in data["bots"]]
        messages = {
            channel: {m["ts"]: Message(**m) for m in listed} for channel, listed in data["messages"].items()
        }
        known = {c.id for c in channels} | set(self.channels)
        if not set(messages) <= known or not all(is_ts(ts) for listed in messages.values() for ts in listed):
            raise ValueError("messages of unknown channels or with malformed timestamps")
        with self._lock:
            for channel in channels:
                self.channels[channel.id] = channel
                self._messages.setdefault(channel.id, {})
            for bot in bots:
                self.bots.setdefault(bot.id, bot)
            for channel, listed in messages.items():
                self._messages[channel].update(sorted(listed.items()))
            newest = max((ts for listed in messages.values() for ts in listed), default="0.0")
            seconds, micros = newest.split(".")
            self._last_us = max(self._last_us, int(seconds) * 1_000_000 + int(micros))
            for channel in self.channels:
                self._changed(channel)
            return sum(len(listed) for listed in messages.values())
