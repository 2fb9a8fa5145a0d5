"""The Circles services: referrals, matching, notifications, and their shared runtime."""
