"""Internals of the functional core: `qatlan.matching` and `qatlan.planner` import from here."""
