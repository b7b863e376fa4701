/* What mmdb_records.c and ipv4_lines.c share: the OffsetReader object (one mapped MaxMind DB). */
#ifndef EASY_GEOIP_OFFSET_READER_H
#define EASY_GEOIP_OFFSET_READER_H

#include <Python.h>
#include <maxminddb.h>
#include <stdint.h>

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

/* "a.b.c.d/n" of the network of `value` with `prefix` bits (0..32) into `out` (at least 19
 * bytes, not terminated); its length. On every located line of a bulk run: snprintf's format
 * parsing cost more than the tree walk. */
static inline int ipv4_network_text(uint32_t value, int prefix, char *out) {
    uint32_t bits = prefix == 0 ? 0 : value & (0xFFFFFFFFU << (32 - prefix));
    char *end = out;
    for (int shift = 24; shift >= 0; shift -= 8) {
        unsigned octet = (bits >> shift) & 0xFF;
        if (octet >= 100) {
            *end++ = (char)('0' + octet / 100);
        }
        if (octet >= 10) {
            *end++ = (char)('0' + octet / 10 % 10);
        }
        *end++ = (char)('0' + octet % 10);
        *end++ = shift ? '.' : '/';
    }
    if (prefix >= 10) {
        *end++ = (char)('0' + prefix / 10);
    }
    *end++ = (char)('0' + prefix % 10);
    return (int)(end - out);
}

/* Adds the Ipv4Lines type (ipv4_lines.c) to the module. */
int add_ipv4_lines(PyObject *module);

#endif
