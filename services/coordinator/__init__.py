"""The coordinator's service: the coordinator page (sign-in, proposals, volunteers, the referral queue, the
yearly target), the commissioner report, and the projection of events they read.

It owns its own state (accounts, and a projection of referral, matching and notification events) and uses
the matching service's HTTP API for volunteers, proposals and decisions, as partner systems would.
"""
