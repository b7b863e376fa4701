"""Which zone answers where zones overlap: one rule, shared by the PostGIS and embedded indexes.

timezone-boundary-builder has deliberately overlapping zones (Asia/Shanghai and Asia/Urumqi in
Xinjiang, Asia/Hebron and Asia/Jerusalem in the West Bank, Africa/Juba and Africa/Khartoum around
Abyei, Asia/Shanghai and Asia/Thimphu on the disputed China-Bhutan border), and a point exactly on a border is covered by both neighbours. The rule:

1. a land zone beats an ocean zone (Etc/GMT±N), so a point on the coastline is on land;
2. then the smallest tzid in code-point order (SQL: COLLATE "C") wins.

It depends only on zone names, so it is the same for every subdivision and every data build.
"""
from __future__ import annotations

from app.timezones.base import is_ocean_zone

# The same order in SQL, for `ORDER BY` over rows with a `tzid` column.
SQL_ORDER = "(tzid LIKE 'Etc/GMT%') ASC, tzid COLLATE \"C\" ASC"


def precedence(tzid: str) -> tuple[bool, str]:
    """Sort key: the smallest key among the zones covering a point is the answer."""
    return (is_ocean_zone(tzid), tzid)
