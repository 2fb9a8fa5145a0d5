"""What opening sealed data can run into (no dependencies, so every layer can catch them)."""

from __future__ import annotations


class KeyDestroyed(LookupError):
    """The data key was destroyed (erasure or retention): the sealed values can never be read again."""

    def __init__(self, dek_id: str) -> None:
        super().__init__(f"data key {dek_id} is destroyed or unknown")
        self.dek_id = dek_id


class SealingRequired(RuntimeError):
    """A record holding personal data was about to be written in the clear (a process without keys)."""


class KekError(ValueError):
    """The key-encryption key configuration is missing or invalid; the message says what to do."""
