"""page-supplier-py: a kfn *supplier* in Python, the twin of functions/page-supplier.

The runtime calls `supply` on the binding's schedule (`every:` in kfn.yaml); each call
emits one random PageEvent such as
`{"name":"P1","user":"U2","date":"2026-11-25T06:01:02.345Z","duration":1234}`,
keyed by the page name.
"""

import json
import os
from datetime import datetime, timezone

import wit_world
from wit_world.imports import host
from wit_world.imports.types import Output


def rfc3339_utc(ms: int) -> str:
    """Milliseconds since the Unix epoch as `YYYY-MM-DDTHH:MM:SS.mmmZ`."""
    t = datetime.fromtimestamp(ms // 1000, tz=timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S") + f".{ms % 1000:03d}Z"


class WitWorld(wit_world.WitWorld):
    def supply(self) -> list[Output]:
        # One 64-bit number from WASI random gives all the randomness we need.
        r = int.from_bytes(os.urandom(8), "little")
        name = "P1" if r & 1 == 0 else "P2"
        event = {
            "name": name,
            "user": "U1" if r & 2 == 0 else "U2",
            "date": rfc3339_utc(host.now_ms()),
            "duration": (r >> 2) % 9000,  # 0..9000 ms
        }
        value = json.dumps(event, separators=(",", ":")).encode()
        # topic=None: the binding's `out` topic.
        return [Output(topic=None, key=name.encode(), value=value, headers=[])]
