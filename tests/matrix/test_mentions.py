"""A notice that mentions a member: a matrix.to link in the formatted body, `m.mentions`."""

from __future__ import annotations

from bridge.core.ids import UserID
from bridge.matrix.mentions import mention_notice_content

ANNA = UserID("@anna:hs")


def test_the_user_id_becomes_a_link_and_an_intentional_mention() -> None:
    content = mention_notice_content(f"{ANNA} answers <this> now.", [ANNA])
    assert content["msgtype"] == "m.notice"
    assert content["body"] == "@anna:hs answers <this> now."
    assert content["formatted_body"] == (
        '<a href="https://matrix.to/#/@anna:hs">@anna:hs</a> answers &lt;this&gt; now.'
    )
    assert content["m.mentions"] == {"user_ids": ["@anna:hs"]}


def test_without_anyone_named_nobody_is_mentioned() -> None:
    content = mention_notice_content("Nobody answers.\nYet.", [])
    assert content["formatted_body"] == "Nobody answers.<br>Yet."
    assert content["m.mentions"] == {"user_ids": []}
