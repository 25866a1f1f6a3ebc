"""{{name}}: a kfn *supplier*: called on the binding's schedule (`every:`)."""

import json

import wit_world
from wit_world.imports import host
from wit_world.imports.types import Output


class WitWorld(wit_world.WitWorld):
    def supply(self) -> list[Output]:
        record = {"source": "{{name}}", "at": host.now_ms()}
        return [
            Output(
                topic=None,  # the binding's `out`
                key=None,
                value=json.dumps(record, separators=(",", ":")).encode(),
                headers=[],
            )
        ]
