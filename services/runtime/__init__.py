"""The runtime every service shares, kept small: settings, JSON logging, Kafka plumbing, the faust app
factory with safe defaults, the unit of work and the dead-letter helper."""
