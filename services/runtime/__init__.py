"""The runtime every service shares, kept small: settings, JSON logging, Kafka plumbing, the stream worker
with its unit of work and state tables, and the dead-letter helper."""
