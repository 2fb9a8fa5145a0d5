"""Contracts between the Circles services and with partner agencies.

Every event and API model is a pydantic v2 model here; the JSON Schemas, the topic catalogue
(``topics.yaml``), ``asyncapi.yaml`` and ``openapi.json`` beside this file are generated from them by
``python -m schemas.generate`` and a test fails when they are stale.
"""
