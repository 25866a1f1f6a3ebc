"""{{name}}: a kfn *batch function*: many records in per call, zero or more records
out per record."""

import wit_world
from componentize_py_types import Err, Ok, Result
from wit_world.imports import host
from wit_world.imports.types import Message, Output


class WitWorld(wit_world.WitWorld):
    def process_batch(self, msgs: list[Message]) -> list[Result[list[Output], str]]:
        """The records kfn read together (up to 256): one result per record, in order.
        Err("why") in a record's place dead-letters that record alone."""
        host.log(host.Level.DEBUG, f"{{name}}: {len(msgs)} records")
        return [handle(msg) for msg in msgs]


def handle(msg: Message) -> Result[list[Output], str]:
    if not msg.value:
        return Err("{{name}}: empty value")
    return Ok(
        [
            Output(
                topic=None,  # the binding's `out`; a topic name routes elsewhere
                key=msg.key,
                value=msg.value,
                headers=msg.headers,
            )
        ]
    )
