"""The protocol side every Python baseline shares: read the request from
stdin, answer each distinct handle once, write one reply to stdout.

Kept faithful to what our executables do so the comparison is honest: every
1.x version accepted, duplicates answered once, an empty value refused, a
per-handle error for anything that fails, exit 0 whenever a reply is written.
"""

import json
import sys


def serve(resolve_one):
    """Runs one call; `resolve_one(handle)` returns the value or raises."""
    try:
        request = json.loads(sys.stdin.buffer.read().decode("utf-8"))
        version = request["version"]
        handles = request["secrets"]
        if not str(version).startswith("1") or not isinstance(handles, list):
            raise ValueError("unsupported request")
    except Exception as e:  # the request is unusable: exit 1, like ours
        sys.stderr.write(f"unusable request: {type(e).__name__}\n")
        return 1
    reply = {}
    for handle in handles:
        if handle in reply:
            continue
        try:
            value = resolve_one(handle)
            if not value:
                reply[handle] = {"value": None, "error": "secret is empty"}
            else:
                reply[handle] = {"value": value, "error": None}
        except Exception as e:  # per-handle error: name it, never the value
            reply[handle] = {"value": None, "error": f"{handle}: {type(e).__name__}"}
    sys.stdout.write(json.dumps(reply))
    sys.stdout.flush()
    return 0


def split_key(handle):
    """`path;key` -> (path, key or None)."""
    path, sep, key = handle.partition(";")
    return path, (key if sep else None)


def pick(document, key):
    """The whole string, or one key of a JSON document."""
    if key is None:
        return document
    value = json.loads(document)[key]
    return value if isinstance(value, str) else json.dumps(value)
