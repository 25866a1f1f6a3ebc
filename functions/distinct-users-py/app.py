"""distinct-users-py: a kfn *aggregator* in Python: the distinct users per window.

The records are PageEvents such as
`{"name":"P1","user":"U2","date":"2026-11-25T06:01:02.345Z","duration":1234}`; `finish`
gives the window's distinct users, sorted: `{"distinct":2,"users":["U1","U3"]}`.

State, format version 1: the byte 1, then the sorted distinct users as a compact JSON
array (`\\x01["U1","U3"]`; an empty window is `\\x01[]`). Merging two windows is the
union of their users: exact, whatever the order records come in, so session windows
merge right. The encoding is canonical (sorted, no duplicates, no spaces), so
`merge(init(), s)` gives `s` byte for byte.

A record that is not a JSON object with a string `user` is refused (`raise Err`): it
is dead-lettered and the window keeps its state.
"""

import json
from bisect import bisect_left

import wit_world
from componentize_py_types import Err
from wit_world.imports.types import Message

FORMAT = 1  # the first byte of every state this version writes


def read_users(state: bytes) -> list[str]:
    """The state bytes as the sorted list of distinct users."""
    if not state:
        raise Err("empty state")
    if state[0] != FORMAT:
        raise Err(f"state format {state[0]} unknown (this version reads {FORMAT})")
    try:
        users = json.loads(state[1:].decode("utf-8"))
    except ValueError as e:  # also UnicodeDecodeError
        raise Err(f"state is not a version-1 user list: {e}")
    if not isinstance(users, list) or not all(isinstance(u, str) for u in users):
        raise Err("state is not a version-1 user list: not a JSON array of strings")
    return users


def write_users(users: list[str]) -> bytes:
    """`users` (sorted, distinct) as state bytes."""
    return bytes([FORMAT]) + json.dumps(users, ensure_ascii=False, separators=(",", ":")).encode()


def user_of(value: bytes) -> str:
    """The `user` of a PageEvent."""
    try:
        event = json.loads(value.decode("utf-8"))
    except ValueError as e:  # also UnicodeDecodeError
        raise Err(f"not a PageEvent: value is not JSON: {e}")
    if not isinstance(event, dict):
        raise Err("not a PageEvent: value is not a JSON object")
    user = event.get("user")
    if not isinstance(user, str):
        raise Err('not a PageEvent: "user" must be a string')
    return user


class WitWorld(wit_world.WitWorld):
    def init(self) -> bytes:
        return write_users([])

    def add(self, state: bytes, msg: Message) -> bytes:
        users = read_users(state)
        user = user_of(msg.value)
        i = bisect_left(users, user)
        if i == len(users) or users[i] != user:
            users.insert(i, user)
        return write_users(users)

    def merge(self, a: bytes, b: bytes) -> bytes:
        return write_users(sorted(set(read_users(a)) | set(read_users(b))))

    def finish(self, state: bytes) -> bytes:
        users = read_users(state)
        value = {"distinct": len(users), "users": users}
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
