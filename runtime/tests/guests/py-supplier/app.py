"""Test guest (world `supplier`): each call returns one record `tick:<n>`,
n counting the calls of this instance from 1."""

import wit_world
from wit_world.imports.types import Output

calls = 0


class WitWorld(wit_world.WitWorld):
    def supply(self) -> list[Output]:
        global calls
        calls += 1
        return [Output(topic=None, key=None, value=f"tick:{calls}".encode(), headers=[])]
