"""{{name}}: a kfn *function*: one record in, zero or more records out."""

import wit_world
from componentize_py_types import Err  # noqa: F401  (raise Err("why") to fail a record)
from wit_world.imports import host
from wit_world.imports.types import Message, Output


class WitWorld(wit_world.WitWorld):
    def process(self, msg: Message) -> list[Output]:
        host.log(host.Level.INFO, f"{{name}}: {len(msg.value)} bytes from {msg.topic}")
        # To fail this record (it is dead-lettered): raise Err("why").
        # Any other exception traps and the record fails without a message.
        return [
            Output(
                topic=None,  # the binding's `out`; a topic name routes elsewhere
                key=msg.key,
                value=msg.value,
                headers=msg.headers,
            )
        ]
