"""Pure rules of the referrals service: no Kafka, no HTTP."""
