"""{{name}}: a kfn *aggregator*: a windowed aggregate whose state kfn keeps.

Use it in an `analytics:` stage of kfn.yaml:

    analytics:
      my-store: { in: my-topic, key: /name, window: { tumbling: 1m }, aggregate: { function: {{name}} } }

kfn calls `add` for each record and each window it falls in, `merge` when two session
windows become one, and `finish` when a window changed (for the dashboard and queries)
and when it closes (the value sent to `out`). The state is bytes you define: kfn stores
them with the window, writes them to the stage's changelog, restores them after a
restart and hands them to the next version of this function when you rebuild it. So
start them with a format version: a later version that changes the format can still
read (or knowingly refuse) the old one.

Every method is pure: same arguments, same result. `raise Err("why")` refuses a
record: it is dead-lettered with that message and the window keeps the state it had.
Any other exception traps (the record fails without a message).

This one counts records and their bytes: `{"records":3,"bytes":240}`. Its state is 17
bytes: the format version 1, then `records` and `bytes` as little-endian u64.
"""

import struct

import wit_world
from componentize_py_types import Err
from wit_world.imports.types import Message

FORMAT = 1  # the first byte of every state this version writes
U64 = (1 << 64) - 1  # counters wrap like a u64
LAYOUT = struct.Struct("<BQQ")  # version, records, bytes: 17 bytes


def read_state(state: bytes) -> tuple[int, int]:
    """The state bytes as (records, bytes)."""
    if not state:
        raise Err("empty state")
    if state[0] != FORMAT or len(state) != LAYOUT.size:
        # Refusing is safe: the record is dead-lettered and the window's state kept, so
        # nothing is lost while you ship a version that reads this format.
        raise Err(f"unreadable state (format {state[0]}, {len(state)} bytes): this version reads format {FORMAT}")
    _, records, size = LAYOUT.unpack(state)
    return records, size


def write_state(records: int, size: int) -> bytes:
    return LAYOUT.pack(FORMAT, records & U64, size & U64)


class WitWorld(wit_world.WitWorld):
    def init(self) -> bytes:
        """The state of a window with no record yet. `merge(init(), s)` must equal `s`."""
        return write_state(0, 0)

    def add(self, state: bytes, msg: Message) -> bytes:
        """The state after `msg` joins a window whose state is `state`."""
        records, size = read_state(state)
        return write_state(records + 1, size + len(msg.value))

    def merge(self, a: bytes, b: bytes) -> bytes:
        """Two windows' states as one (when session windows merge)."""
        (ra, sa), (rb, sb) = read_state(a), read_state(b)
        return write_state(ra + rb, sa + sb)

    def finish(self, state: bytes) -> bytes:
        """The window's value, as JSON bytes."""
        records, size = read_state(state)
        return f'{{"records":{records},"bytes":{size}}}'.encode()
