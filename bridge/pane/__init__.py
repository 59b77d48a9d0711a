"""The context pane: an Element room widget beside each conversation room, served by the bridge."""
