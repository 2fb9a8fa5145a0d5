"""Pure rules of the matching service: no Kafka, no HTTP, no clock."""
