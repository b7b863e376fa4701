"""Open a MaxMind DB with the C reader the workers use and report on it as one JSON line.

Run as a separate process by verify.py (`python inspect_db.py PATH PROBE`, PROBE `location` for a
City file or `asn` for an ASN file): libmaxminddb can crash
outright (SIGSEGV, abort) on some damaged files, and a crash here must become a refusal with a
message, not the end of the updater. Self-contained on purpose: only the standard library and
maxminddb, so the child starts fast and imports nothing of the app.
"""
import itertools
import json
import sys

import maxminddb

# Addresses every City and ASN database knows: MaxMind's own test networks (also present in their
# real databases) and big public resolvers.
PROBE_ADDRESSES = ("81.2.69.160", "89.160.20.112", "216.160.83.56", "8.8.8.8", "1.1.1.1",
                   "2001:218::", "2a02:cf40::", "2001:4860:4860::8888", "1.128.0.0", "12.81.92.0")
# What a probe's record must hold to count as an answer, per kind of file.
ANSWER_KEYS = {
    "location": ("city", "country", "continent", "location", "registered_country"),
    "asn": ("autonomous_system_number", "autonomous_system_organization"),
}
RECORDS_WALKED = 1000


def inspect(path: str, probe: str = "location") -> dict:
    answer_keys = ANSWER_KEYS[probe]
    stage = "open"
    try:
        reader = maxminddb.open_database(path, maxminddb.MODE_MMAP_EXT)
        stage = "metadata"
        meta = reader.metadata()
        facts = {"database_type": str(meta.database_type), "ip_version": int(meta.ip_version),
                 "node_count": int(meta.node_count), "record_size": int(meta.record_size),
                 "build_epoch": int(meta.build_epoch)}
        if facts["ip_version"] not in (4, 6):
            return {"ok": True, "hits": 0, **facts}  # the parent refuses it by its metadata
        stage = "data"
        hits = 0
        for address in PROBE_ADDRESSES:
            if facts["ip_version"] == 4 and ":" in address:
                continue
            record = reader.get(address)
            if isinstance(record, dict) and any(key in record for key in answer_keys):
                hits += 1
        # Decoding the first records catches a corrupt data section the probes happened to miss.
        for _ in itertools.islice(iter(reader), RECORDS_WALKED):
            pass
        reader.close()
        return {"ok": True, "hits": hits, **facts}
    except Exception as exc:  # every failure is reported to the parent, which refuses the file
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return {"ok": False, "stage": stage, "error": text[:160]}


if __name__ == "__main__":
    print(json.dumps(inspect(sys.argv[1], *sys.argv[2:3])))
