/* What mmdb_records.c and ipv4_lines.c share: the OffsetReader object (one mapped MaxMind DB). */
#ifndef EASY_GEOIP_OFFSET_READER_H
#define EASY_GEOIP_OFFSET_READER_H

#include <Python.h>
#include <maxminddb.h>

struct Table;

typedef struct {
    PyObject_HEAD
    MMDB_s mmdb;
    int open;
    /* libmaxminddb counts an IPv4 address's prefix within the IPv6 tree; the extension (and so
     * every caller) counts it within IPv4. */
    int ipv4_shift;
    struct Table *table; /* what read_fields reads (app/record_fields.py), or NULL */
} OffsetReader;

extern PyTypeObject OffsetReaderType;

/* Adds the Ipv4Lines type (ipv4_lines.c) to the module. */
int add_ipv4_lines(PyObject *module);

#endif
