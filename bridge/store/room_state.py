"""The rooms' state kept from the transactions (`matrix/room_state.py`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select

from bridge.core.ids import RoomID
from bridge.store.base import Sessions, insert_on
from bridge.store.schema import Base, RoomStateRow

_TABLE = Base.metadata.tables[RoomStateRow.__tablename__]
_KEY = [_TABLE.c.room_id, _TABLE.c.event_type, _TABLE.c.state_key]


def _remember(dialect: str) -> Any:
    """Keep one entry, replacing what was kept for its room, type and state key. Run with
    a row of values per entry: a multi-row INSERT would be compiled again for every size."""
    insert = insert_on(dialect, _TABLE)
    return insert.on_conflict_do_update(
        index_elements=_KEY, set_={"content": insert.excluded.content}
    )


# Built once for each dialect the store runs on.
_REMEMBER = {dialect: _remember(dialect) for dialect in ("sqlite", "postgresql")}


class RoomStateStore(Sessions):
    async def remember_room_state(
        self, room_id: RoomID, entries: Sequence[tuple[str, str, dict[str, Any]]]
    ) -> None:
        """Keep each (type, state key, content), replacing what was kept for the first two."""
        if not entries:
            return
        values = [
            {"room_id": room_id, "event_type": kind, "state_key": key, "content": content}
            for kind, key, content in entries
        ]
        async with self._write_engine.begin() as connection:
            await connection.execute(_REMEMBER[connection.dialect.name], values)

    async def known_room_state(self, room_id: RoomID) -> list[tuple[str, str, dict[str, Any]]]:
        async with self._reads() as session:
            rows = await session.scalars(
                select(RoomStateRow).where(RoomStateRow.room_id == room_id)
            )
            return [(r.event_type, r.state_key, dict(r.content)) for r in rows]
