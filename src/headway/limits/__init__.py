"""Token-aware rate limits: values, estimation, the atomic reserve/settle stores (memory, Redis +
Lua), the fair wait queue, the provider capacity view and the pipeline stage. See docs/limits.md."""
