"""Internals of `qatlan.state`: schema and migrations, snapshots, locks. Import `qatlan.state`."""
