"""Test guest (world `function`): its behaviour depends on the UTF-8 input value.

  error        -> the error string "py probe error: asked to fail"
  config:KEY   -> one output: host config(KEY), or "<unset>"
  log:MSG      -> host log(info, MSG), then one output "logged"
  now          -> one output: host now-ms in decimal
  anything     -> one output "probe-py:" + input, same key, to the binding's out
"""

import wit_world
from componentize_py_types import Err
from wit_world.imports import host
from wit_world.imports.types import Message, Output


def one(msg: Message, value: str) -> list[Output]:
    return [Output(topic=None, key=msg.key, value=value.encode(), headers=[])]


class WitWorld(wit_world.WitWorld):
    def process(self, msg: Message) -> list[Output]:
        text = msg.value.decode()
        if text == "error":
            # Raising Err(...) returns the WIT error value.
            raise Err("py probe error: asked to fail")
        if text.startswith("config:"):
            value = host.config(text.removeprefix("config:"))
            return one(msg, "<unset>" if value is None else value)
        if text.startswith("log:"):
            host.log(host.Level.INFO, text.removeprefix("log:"))
            return one(msg, "logged")
        if text == "now":
            return one(msg, str(host.now_ms()))
        return one(msg, "probe-py:" + text)
