"""The marketplace's side: the server-to-server HTTP API and the signed webhooks."""
