"""Circle rules as plain functions over pydantic models (no Kafka, no clock: "now" is an argument)."""
