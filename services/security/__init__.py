"""Who may do what on the Kafka cluster: ACLs derived from the catalogue, and how to apply them."""
