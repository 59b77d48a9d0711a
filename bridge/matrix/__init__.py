"""The homeserver side: appservice routes, the gateway that acts as bot and ghosts, room mapping."""
