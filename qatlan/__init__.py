"""qatlan: keep Qualytics and Atlan in sync the way Terraform keeps infrastructure in sync.

Read both sides into a local state, show a plan, apply only approved changes.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
