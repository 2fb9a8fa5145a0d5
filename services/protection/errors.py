"""What opening sealed data can run into (``Erased`` and ``SealingRequired`` are the runtime's, which
knows them without knowing how sealing is done)."""

from __future__ import annotations

from services.runtime.codec import Erased, SealingRequired

__all__ = ["Erased", "KekError", "KeyDestroyed", "SealingRequired"]


class KeyDestroyed(Erased):
    """The data key was destroyed (erasure or retention): the sealed values can never be read again."""

    def __init__(self, dek_id: str) -> None:
        super().__init__(f"data key {dek_id} is destroyed or unknown")
        self.dek_id = dek_id


class KekError(ValueError):
    """The key-encryption key configuration is missing or invalid; the message says what to do."""
