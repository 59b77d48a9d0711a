"""E-mail: mail out through an SMTP relay from a stored outbox, buyers' replies in through
the bridge's own SMTP listener, and the one-click unsubscribe."""
