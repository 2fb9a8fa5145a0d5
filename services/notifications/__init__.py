"""The notifications service: turns referral and matching events into messages (email, signed webhooks),
delivers each once per recipient, retries with back-off, dead-letters what cannot be delivered, and keeps a
delivery log. Messages carry references and links only, never a person's details."""
