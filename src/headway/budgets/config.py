"""Config section `budgets`: Token and dollar budgets, reserved before the call and settled after.

Owned by the budgets package; the root schema (headway.config.schema) only references it.
"""

from __future__ import annotations

from headway.config.base import StrictModel


class BudgetsConfig(StrictModel):
    enabled: bool = False
