"""Redis cache: read-through with race-free fills, invalidation, stampede guard, breaker."""

from azora_nexus.cache.cache import Cache, CacheOptions, open_cache

__all__ = ["Cache", "CacheOptions", "open_cache"]
