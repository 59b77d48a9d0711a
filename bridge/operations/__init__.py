"""What the operator sees of a running bridge: Prometheus metrics and health checks."""
