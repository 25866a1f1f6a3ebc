"""{{name}}: a kfn *consumer*: receives each record for a side effect."""

import wit_world
from wit_world.imports import host
from wit_world.imports.types import Message


class WitWorld(wit_world.WitWorld):
    def consume(self, msg: Message) -> None:
        text = msg.value.decode(errors="replace")
        host.log(host.Level.INFO, f"{{name}} got {msg.topic}[{msg.partition}]@{msg.offset}: {text}")
        # To fail this record (it is dead-lettered): raise componentize_py_types.Err("why").
