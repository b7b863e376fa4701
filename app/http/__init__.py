"""The HTTP layer: parse requests, shape responses. Knows nothing of maxminddb or DNS."""
