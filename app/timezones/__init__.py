"""Time-zone indexes: which IANA zone contains a point, from the tz_world polygons."""
