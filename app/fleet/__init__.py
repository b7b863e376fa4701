"""A fleet of replicas fed by one updater (docs/scaling.md).

The updater downloads and verifies each database once and publishes it (`publish.py`: the live
file, ETag = its sha256); every replica's puller (`pull.py`, its own supervisord program) fetches
it with a conditional GET, verifies it with update-db's own checks and installs it atomically into
its local volume, where the workers swap to it as they do after `update-db`. `catalog.py` names the
databases that travel this way. Knows nothing of Flask.
"""
