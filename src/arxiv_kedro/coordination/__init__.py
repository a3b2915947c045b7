"""What processes share that is not storage: a cache, rate limits, run locks and hand-offs —
on Redis in production, in this process or a file in the embedded default."""
