"""Pane sessions without I/O: bound to one user and one room, signed, short-lived."""

from __future__ import annotations

import pytest

from bridge.core.ids import RoomID, UserID
from bridge.errors import Forbidden, Unauthorized
from bridge.matrix.content import pane_widget_state
from bridge.pane.access import PaneSessions

OLGA = UserID("@olga:localhost")
ROOM_A, ROOM_B = RoomID("!a:localhost"), RoomID("!b:localhost")


def test_a_session_opens_its_own_room_only() -> None:
    sessions = PaneSessions()
    token = sessions.token(sessions.issue(OLGA, ROOM_A))
    assert sessions.verify(token, ROOM_A).user_id == OLGA
    with pytest.raises(Forbidden) as refused:
        sessions.verify(token, ROOM_B)
    assert refused.value.errcode == "BAZAAR_NOT_A_MEMBER"


def test_another_key_an_edit_or_an_old_session_is_refused() -> None:
    sessions, other = PaneSessions(), PaneSessions()
    token = other.token(other.issue(OLGA, ROOM_A))
    with pytest.raises(Unauthorized):
        sessions.verify(token, ROOM_A)
    head, claims, signature = sessions.token(sessions.issue(OLGA, ROOM_A)).split(".")
    # The signature's first character carries six whole bits of it.
    edited = ("B" if signature[0] == "A" else "A") + signature[1:]
    with pytest.raises(Unauthorized):
        sessions.verify(f"{head}.{claims}.{edited}", ROOM_A)
    with pytest.raises(Unauthorized, match="expired"):
        sessions.verify(sessions.token(sessions.issue(OLGA, ROOM_A, ttl=-5)), ROOM_A)


def test_the_widget_points_at_the_pane_and_is_pinned_right() -> None:
    widget, layout = pane_widget_state("https://bridge.example/", UserID("@bazaar:example"))
    assert widget["type"] == "im.vector.modular.widgets"
    assert widget["state_key"] == widget["content"]["id"] == "bazaar_pane"
    assert widget["content"]["url"] == (
        "https://bridge.example/matrix-widget/v1/?room_id=$matrix_room_id&user_id=$matrix_user_id"
    )
    assert layout == {
        "type": "io.element.widgets.layout",
        "state_key": "",
        "content": {"widgets": {"bazaar_pane": {"container": "right"}}},
    }
