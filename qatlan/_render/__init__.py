"""Plan and match renderers behind `qatlan.render` (private; import from qatlan.render)."""
