"""What Slack's IDs look like: the one pattern each, for settings and for payloads alike."""

from __future__ import annotations

import re

# Bounded: a payload's user field is untrusted, and Slack's IDs are about 11 characters.
USER_ID = re.compile(r"^[UW][A-Z0-9]{2,30}$")
CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{2,30}$")
