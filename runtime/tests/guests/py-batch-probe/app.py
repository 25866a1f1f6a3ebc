"""Test guest (world `batch-function`): the Python probe's echo, many records per call.
Per record, by its UTF-8 value:

  error        -> Err("py batch probe error: asked to fail") in its place
  trap         -> raises: the whole call traps
  anything     -> one output "probe-py:" + input, same key, to the binding's out
"""

import wit_world
from componentize_py_types import Err, Ok, Result
from wit_world.imports.types import Message, Output


def one(msg: Message) -> Result[list[Output], str]:
    text = msg.value.decode()
    if text == "trap":
        raise RuntimeError("py batch probe trap")
    if text == "error":
        return Err("py batch probe error: asked to fail")
    return Ok([Output(topic=None, key=msg.key, value=("probe-py:" + text).encode(), headers=[])])


class WitWorld(wit_world.WitWorld):
    def process_batch(self, msgs: list[Message]) -> list[Result[list[Output], str]]:
        return [one(msg) for msg in msgs]
