"""The referrals service: partner agencies submit referrals, the eligibility policy decides.

Two process types: the partner HTTP API (``api.py``), which authenticates agencies, validates submissions
and turns them into commands; and the worker (``agents.py``), the single writer of referral state, which
applies commands, runs the eligibility policy and publishes minimised events.
"""
