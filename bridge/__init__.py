"""Bazaar Bridge: marketplace buyer–seller chat carried over Matrix."""

__version__ = "0.1.0"
