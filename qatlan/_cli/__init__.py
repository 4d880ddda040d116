"""The command modules of the qatlan CLI; qatlan/cli.py mounts them."""
