"""City database updates: sources, download, unpack, verify, atomic install, lock, state, schedule.

Entry points: `run_update` / `run_rollback` (app.updater.run), `run_schedule` (app.updater.schedule),
`describe_live_database` (app.updater.status). Knows nothing of Flask.
"""
