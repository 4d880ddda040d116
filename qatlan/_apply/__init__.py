"""Internals of `qatlan.apply`: executing a plan, split by concern. Import from qatlan.apply."""
