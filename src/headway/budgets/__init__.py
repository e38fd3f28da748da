"""Token and dollar budgets: values, the shipped pricing table, exact cost, budget items and
threshold alerts. Enforced by the limits stage in the same atomic reservation."""
