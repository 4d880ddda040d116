"""Faithful local servers of the Atlan and Qualytics APIs (the subset qatlan uses).

`World` holds both sides' contents; `create_atlan_app` / `create_qualytics_app` are the ASGI
apps; `qatlan.sandbox.server` runs them over real HTTP on loopback or in-process.
"""
