"""Pure rules of the coordinator service."""
