"""The buyer's side: the widget API, its real-time stream and the embeddable widget."""
