"""Field-level encryption of personal data in Kafka, and its erasure by destroying keys (crypto-shredding).

* ``keks``: the key-encryption keys, from configuration (a KMS would implement the same two calls);
* ``keystore``: per-subject data keys, wrapped by a KEK, on a compacted keys topic; destroying them erases;
* ``sealing``: which fields are personal (the contracts' ``x-personal-data`` marker) and how they are sealed.
"""
