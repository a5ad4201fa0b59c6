"""Server paths cut out of text the API shows (a model's metrics and provenance): each
file path becomes its last component, so no directory layout of the server leaks."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

# A file path inside text: absolute, ~/, ./, ../, C:\\, file:// or relative with a
# separator; not a web URL (http(s)://...).  Each is cut to its last component.
_PATH_IN_TEXT = re.compile(r"(?:file://|(?<![\w/\\:.~-])(?!https?://))"
                           r"(?:[a-zA-Z]:)?[\w.~-]*(?:[/\\][\w.~ -]*)*[/\\][\w.~-]*")


def _last_part(match: re.Match[str]) -> str:
    parts = [p for p in re.split(r"[/\\]", match.group(0)) if p.strip()]
    return parts[-1].strip() if parts else ""


def scrub_paths(value: Any) -> Any:
    """Paths in a model's metadata become their last component: no server paths leak.

    Examples:
        >>> scrub_paths({"data": "runs/../data/raf-db", "w": ["C:\\\\x\\\\y.pt", "~/a/b/"]})
        {'data': 'raf-db', 'w': ['y.pt', 'b']}
        >>> scrub_paths("trained on /home/ann/fer2013.csv, see https://x.org/p")
        'trained on fer2013.csv, see https://x.org/p'
    """
    if isinstance(value, Mapping):
        return {k: scrub_paths(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [scrub_paths(v) for v in value]
    if isinstance(value, str):
        return _PATH_IN_TEXT.sub(_last_part, value)
    return value
