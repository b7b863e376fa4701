/* ipv4_lines: bulk enrichment's common line (a public IPv4 address in dotted-quad form) rendered as
 * its JSON document in C, from templates the Python side made (app/lookup_json.py).
 *
 * Why this exists (docs/architecture.md, "Bulk enrichment"): `cli.py lookup --file` spends most
 * of a line's time in the few steps that are the same for every address of a City record: the
 * lookups in both files, finding the record's template, joining its bytes. Here those steps run
 * without a Python object per step. The document's shape is not known here: a template is the
 * bytes the Python side serialised from a real document, cut at slots (the query, the ip, the
 * network, the time-zone block, the asn block) that this module fills per line. Whatever it
 * cannot do (a line that is not a canonical dotted quad, an address in a range it is told to leave
 * alone, a record without a template yet, a time-zone block not made for this second, a damaged
 * file) it leaves as None, and Python answers that line its own way.
 *
 * Ipv4Lines(city, asn, ranges, templates, asn_parts, no_asn, zones):
 *   city, asn   OffsetReaders (asn None: no ASN file)
 *   ranges      bytes: sorted, disjoint (start, end) pairs of native uint32, inclusive, left to Python
 *   templates   dict: City record offset -> (parts: tuple of bytes, slots: bytes, zone: int);
 *               len(parts) == len(slots) + 1, each slot one of the SLOT_ codes below
 *   asn_parts   dict: ASN record offset -> (whole,) or (before, after) around the ASN network
 *   no_asn      bytes: the asn slot when the ASN file has no record for the address (or there is none)
 *   zones       list: zone -> the time-zone block's JSON for the current second, or None
 * The dicts and the list are the Python side's own, changed in place between calls.
 * render(lines: list of bytes, make_missing=None) -> list: each line's JSON, or None. For each
 *   line located in the files whose template, ASN block or time-zone block is not made yet,
 *   make_missing(line, City offset, City network, ASN offset or None, ASN network or None) is
 *   called: Python makes those pieces from where the records are, without looking the address up
 *   again, and the line is joined then, its lookups not made twice.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include "offset_reader.h"

enum { SLOT_QUERY = 0, SLOT_IP = 1, SLOT_NETWORK = 2, SLOT_TIMEZONE = 3, SLOT_ASN = 4 };

typedef struct {
    PyObject_HEAD
    OffsetReader *city;
    OffsetReader *asn; /* NULL: no ASN file */
    uint32_t *starts;
    uint32_t *ends;
    Py_ssize_t range_count;
    PyObject *templates;
    PyObject *asn_parts;
    PyObject *no_asn;
    PyObject *zones;
} Ipv4Lines;

static void Ipv4Lines_clear_fields(Ipv4Lines *self) {
    Py_CLEAR(self->city);
    Py_CLEAR(self->asn);
    Py_CLEAR(self->templates);
    Py_CLEAR(self->asn_parts);
    Py_CLEAR(self->no_asn);
    Py_CLEAR(self->zones);
    PyMem_Free(self->starts);
    self->starts = self->ends = NULL;
    self->range_count = 0;
}

static int Ipv4Lines_init(Ipv4Lines *self, PyObject *args, PyObject *kwds) {
    PyObject *city, *asn, *templates, *asn_parts, *no_asn, *zones;
    Py_buffer ranges;
    static char *keywords[] = {"city", "asn", "ranges", "templates", "asn_parts", "no_asn", "zones", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!Oy*O!O!SO!", keywords, &OffsetReaderType, &city, &asn, &ranges,
                                     &PyDict_Type, &templates, &PyDict_Type, &asn_parts, &no_asn, &PyList_Type,
                                     &zones)) {
        return -1;
    }
    if (asn != Py_None && !PyObject_TypeCheck(asn, &OffsetReaderType)) {
        PyBuffer_Release(&ranges);
        PyErr_SetString(PyExc_TypeError, "asn must be an OffsetReader or None");
        return -1;
    }
    if (ranges.len % (2 * (Py_ssize_t)sizeof(uint32_t)) != 0) {
        PyBuffer_Release(&ranges);
        PyErr_SetString(PyExc_ValueError, "ranges must hold (start, end) pairs of uint32");
        return -1;
    }
    Py_ssize_t count = ranges.len / (2 * (Py_ssize_t)sizeof(uint32_t));
    uint32_t *starts = PyMem_Malloc((size_t)(count ? count : 1) * 2 * sizeof(uint32_t));
    if (starts == NULL) {
        PyBuffer_Release(&ranges);
        PyErr_NoMemory();
        return -1;
    }
    const uint32_t *pairs = (const uint32_t *)ranges.buf;
    for (Py_ssize_t i = 0; i < count; i++) {
        starts[i] = pairs[2 * i];
        starts[count + i] = pairs[2 * i + 1];
        if (starts[i] > starts[count + i] || (i > 0 && starts[i] <= starts[count + i - 1])) {
            PyMem_Free(starts);
            PyBuffer_Release(&ranges);
            PyErr_SetString(PyExc_ValueError, "ranges must be sorted and disjoint");
            return -1;
        }
    }
    PyBuffer_Release(&ranges);
    Ipv4Lines_clear_fields(self);
    self->starts = starts;
    self->ends = starts + count;
    self->range_count = count;
    self->city = (OffsetReader *)Py_NewRef(city);
    self->asn = asn == Py_None ? NULL : (OffsetReader *)Py_NewRef(asn);
    self->templates = Py_NewRef(templates);
    self->asn_parts = Py_NewRef(asn_parts);
    self->no_asn = Py_NewRef(no_asn);
    self->zones = Py_NewRef(zones);
    return 0;
}

static void Ipv4Lines_dealloc(Ipv4Lines *self) {
    Ipv4Lines_clear_fields(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* A dotted quad exactly as ipaddress writes it (no leading zeros, nothing around it): then the
 * line is its own canonical text, which is what the document's query and ip say. */
static int parse_quad(const char *text, Py_ssize_t length, uint32_t *value) {
    if (length < 7 || length > 15) {
        return 0;
    }
    uint32_t bits = 0;
    Py_ssize_t i = 0;
    for (int octet = 0; octet < 4; octet++) {
        if (octet > 0) {
            if (i >= length || text[i] != '.') {
                return 0;
            }
            i++;
        }
        Py_ssize_t start = i;
        unsigned number = 0;
        while (i < length && text[i] >= '0' && text[i] <= '9' && i - start < 3) {
            number = number * 10 + (unsigned)(text[i] - '0');
            i++;
        }
        if (i == start || number > 255 || (i - start > 1 && text[start] == '0')) {
            return 0;
        }
        bits = bits << 8 | number;
    }
    if (i != length) {
        return 0;
    }
    *value = bits;
    return 1;
}

static int in_ranges(const Ipv4Lines *self, uint32_t value) {
    Py_ssize_t low = 0, high = self->range_count; /* the first start above value */
    while (low < high) {
        Py_ssize_t middle = low + (high - low) / 2;
        if (self->starts[middle] <= value) {
            low = middle + 1;
        } else {
            high = middle;
        }
    }
    return low > 0 && value <= self->ends[low - 1];
}

/* The record's offset and the network text ("a.b.c.0/24", no quotes) in `network`; 1 found, 0 no
 * record, -1 the lookup failed (a damaged file: Python raises its error for the line). */
static int locate(OffsetReader *reader, uint32_t value, unsigned long *offset, char *network, int *network_length) {
    if (!reader->open) {
        return -1;
    }
    struct sockaddr_in v4;
    memset(&v4, 0, sizeof v4);
    v4.sin_family = AF_INET;
    v4.sin_addr.s_addr = htonl(value);
    int error = MMDB_SUCCESS;
    MMDB_lookup_result_s result = MMDB_lookup_sockaddr(&reader->mmdb, (const struct sockaddr *)&v4, &error);
    if (error != MMDB_SUCCESS) {
        return -1;
    }
    if (!result.found_entry) {
        return 0;
    }
    int prefix = (int)result.netmask - reader->ipv4_shift;
    if (prefix < 0 || prefix > 32) {
        return -1;
    }
    *network_length = ipv4_network_text(value, prefix, network);
    *offset = (unsigned long)result.entry.offset;
    return 1;
}

/* A borrowed value of `dict` at the integer `offset`, NULL when there is none (or on error). */
static PyObject *at_offset(PyObject *dict, unsigned long offset) {
    PyObject *key = PyLong_FromUnsignedLong(offset);
    if (key == NULL) {
        return NULL;
    }
    PyObject *value = PyDict_GetItemWithError(dict, key);
    Py_DECREF(key);
    return value;
}

/* Where the ASN file has the address's record: found (1) or not (0), or not asked yet (-1). */
typedef struct {
    int found;
    unsigned long offset;
    char network[24];
    int network_length;
} AsnPlace;

/* A line located in the City file (a canonical dotted quad, outside the ranges left to Python). */
typedef struct {
    const char *text;
    Py_ssize_t length;
    uint32_t value;
    unsigned long city_offset;
    char network[24];
    int network_length;
    AsnPlace asn;
} Located;

enum { JOINED = 1, LEFT = 0, MISSING = 2, FAILED = -1 };

/* Where the ASN file has the line's record, asked at most once per line; -1 a damaged file. */
static int asn_place(Ipv4Lines *self, Located *line) {
    if (line->asn.found < 0) {
        line->asn.found = locate(self->asn, line->value, &line->asn.offset, line->asn.network,
                                 &line->asn.network_length);
    }
    return line->asn.found;
}

/* The line's JSON from its record's template in *rendered: JOINED; LEFT when Python is to answer
 * it; MISSING when its template, ASN block or time-zone block is not made yet; FAILED on error. */
static int join_line(Ipv4Lines *self, Located *line, PyObject **rendered) {
    PyObject *template = at_offset(self->templates, line->city_offset);
    if (template == NULL) {
        return PyErr_Occurred() ? FAILED : MISSING;
    }
    if (!PyTuple_Check(template) || PyTuple_GET_SIZE(template) != 3) {
        return LEFT; /* a record the Python side does not template */
    }
    PyObject *parts = PyTuple_GET_ITEM(template, 0), *slots = PyTuple_GET_ITEM(template, 1);
    PyObject *zone_index = PyTuple_GET_ITEM(template, 2);
    if (!PyTuple_Check(parts) || !PyBytes_Check(slots) || !PyLong_Check(zone_index)
        || PyTuple_GET_SIZE(parts) != PyBytes_GET_SIZE(slots) + 1) {
        return LEFT;
    }
    PyObject *zone = NULL; /* only a template with the time-zone slot needs its block */
    if (memchr(PyBytes_AS_STRING(slots), SLOT_TIMEZONE, (size_t)PyBytes_GET_SIZE(slots)) != NULL) {
        Py_ssize_t zone_number = PyLong_AsSsize_t(zone_index);
        if (zone_number < 0 || zone_number >= PyList_GET_SIZE(self->zones)) {
            PyErr_Clear();
            return LEFT;
        }
        zone = PyList_GET_ITEM(self->zones, zone_number);
        if (!PyBytes_Check(zone)) {
            return MISSING; /* not made for this second yet */
        }
    }
    PyObject *asn_block = self->no_asn;
    AsnPlace *asn = &line->asn;
    /* only a template with the asn slot needs the ASN file's answer */
    if (self->asn != NULL && memchr(PyBytes_AS_STRING(slots), SLOT_ASN, (size_t)PyBytes_GET_SIZE(slots)) != NULL) {
        int found = asn_place(self, line);
        if (found < 0) {
            return LEFT;
        }
        if (found) {
            asn_block = at_offset(self->asn_parts, asn->offset);
            if (asn_block == NULL) {
                return PyErr_Occurred() ? FAILED : MISSING;
            }
        }
    }
    Py_ssize_t asn_count = 1;
    if (asn_block != self->no_asn) {
        asn_count = PyTuple_Check(asn_block) ? PyTuple_GET_SIZE(asn_block) : 0;
        if ((asn_count != 1 && asn_count != 2) || !PyBytes_Check(PyTuple_GET_ITEM(asn_block, 0))
            || (asn_count == 2 && !PyBytes_Check(PyTuple_GET_ITEM(asn_block, 1)))) {
            return LEFT;
        }
    } else if (!PyBytes_Check(asn_block)) {
        return LEFT;
    }
    const char *codes = PyBytes_AS_STRING(slots);
    Py_ssize_t slot_count = PyBytes_GET_SIZE(slots);
    Py_ssize_t total = 0;
    for (Py_ssize_t i = 0; i <= slot_count; i++) {
        PyObject *part = PyTuple_GET_ITEM(parts, i);
        if (!PyBytes_Check(part)) {
            return LEFT;
        }
        total += PyBytes_GET_SIZE(part);
        if (i == slot_count) {
            break;
        }
        switch (codes[i]) {
        case SLOT_QUERY:
        case SLOT_IP:
            total += line->length + 2;
            break;
        case SLOT_NETWORK:
            total += line->network_length + 2;
            break;
        case SLOT_TIMEZONE:
            total += PyBytes_GET_SIZE(zone);
            break;
        case SLOT_ASN:
            if (asn_block == self->no_asn) {
                total += PyBytes_GET_SIZE(asn_block);
            } else {
                total += PyBytes_GET_SIZE(PyTuple_GET_ITEM(asn_block, 0));
                if (asn_count == 2) {
                    total += asn->network_length + 2 + PyBytes_GET_SIZE(PyTuple_GET_ITEM(asn_block, 1));
                }
            }
            break;
        default:
            return LEFT;
        }
    }
    *rendered = PyBytes_FromStringAndSize(NULL, total);
    if (*rendered == NULL) {
        return FAILED;
    }
    char *out = PyBytes_AS_STRING(*rendered);
#define PUT(source, size) (memcpy(out, (source), (size_t)(size)), out += (size))
#define PUT_BYTES(object) PUT(PyBytes_AS_STRING(object), PyBytes_GET_SIZE(object))
#define PUT_QUOTED(source, size) (*out++ = '"', PUT(source, size), *out++ = '"')
    for (Py_ssize_t i = 0; i <= slot_count; i++) {
        PUT_BYTES(PyTuple_GET_ITEM(parts, i));
        if (i == slot_count) {
            break;
        }
        switch (codes[i]) {
        case SLOT_QUERY:
        case SLOT_IP:
            PUT_QUOTED(line->text, line->length);
            break;
        case SLOT_NETWORK:
            PUT_QUOTED(line->network, line->network_length);
            break;
        case SLOT_TIMEZONE:
            PUT_BYTES(zone);
            break;
        default: /* SLOT_ASN */
            if (asn_block == self->no_asn) {
                PUT_BYTES(asn_block);
            } else {
                PUT_BYTES(PyTuple_GET_ITEM(asn_block, 0));
                if (asn_count == 2) {
                    PUT_QUOTED(asn->network, asn->network_length);
                    PUT_BYTES(PyTuple_GET_ITEM(asn_block, 1));
                }
            }
        }
    }
#undef PUT_QUOTED
#undef PUT_BYTES
#undef PUT
    return JOINED;
}

/* Asks Python to make what the line's join is missing: make_missing(line, City offset, City
 * network, ASN offset or None, ASN network or None). 0 asked (or left: a damaged ASN file),
 * -1 on error. */
static int make_missing(Ipv4Lines *self, PyObject *make, PyObject *text, Located *line) {
    int found = self->asn != NULL ? asn_place(self, line) : 0;
    if (found < 0) {
        return 0; /* a damaged ASN file: Python says so for the line */
    }
    PyObject *made = found
        ? PyObject_CallFunction(make, "Oks#ks#", text, line->city_offset, line->network,
                                (Py_ssize_t)line->network_length, line->asn.offset, line->asn.network,
                                (Py_ssize_t)line->asn.network_length)
        : PyObject_CallFunction(make, "Oks#OO", text, line->city_offset, line->network,
                                (Py_ssize_t)line->network_length, Py_None, Py_None);
    if (made == NULL) {
        return -1;
    }
    Py_DECREF(made);
    return 0;
}

/* One line's JSON, Py_None (new reference) when Python is to answer it, NULL on error. With
 * `make` (a callable), what a located line's join is missing is made by it, then joined. */
static PyObject *render_line(Ipv4Lines *self, PyObject *text, PyObject *make) {
    if (!PyBytes_Check(text)) {
        Py_RETURN_NONE;
    }
    Located line = {.text = PyBytes_AS_STRING(text), .length = PyBytes_GET_SIZE(text), .asn = {.found = -1}};
    while (line.length > 0 && line.text[line.length - 1] == '\r') {
        line.length--;
    }
    if (!parse_quad(line.text, line.length, &line.value) || in_ranges(self, line.value)
        || locate(self->city, line.value, &line.city_offset, line.network, &line.network_length) != 1) {
        Py_RETURN_NONE;
    }
    PyObject *rendered = NULL;
    int outcome = join_line(self, &line, &rendered);
    if (outcome == MISSING && make != NULL) {
        if (make_missing(self, make, text, &line) < 0) {
            return NULL;
        }
        outcome = join_line(self, &line, &rendered); /* what Python could not make stays missing */
    }
    if (outcome == FAILED) {
        return NULL;
    }
    if (outcome != JOINED) {
        Py_RETURN_NONE;
    }
    return rendered;
}

static PyObject *Ipv4Lines_render(Ipv4Lines *self, PyObject *args) {
    PyObject *lines, *make = Py_None;
    if (!PyArg_ParseTuple(args, "O!|O", &PyList_Type, &lines, &make)) {
        return NULL;
    }
    if (make != Py_None && !PyCallable_Check(make)) {
        PyErr_SetString(PyExc_TypeError, "render(lines, make_missing): make_missing must be callable or None");
        return NULL;
    }
    if (self->city == NULL) {
        PyErr_SetString(PyExc_ValueError, "not initialised");
        return NULL;
    }
    Py_ssize_t count = PyList_GET_SIZE(lines);
    PyObject *rendered = PyList_New(count);
    if (rendered == NULL) {
        return NULL;
    }
    Py_ssize_t i = 0;
    for (; i < count && i < PyList_GET_SIZE(lines); i++) {
        PyObject *text = Py_NewRef(PyList_GET_ITEM(lines, i)); /* make_missing may change the list */
        PyObject *line = render_line(self, text, make == Py_None ? NULL : make);
        Py_DECREF(text);
        if (line == NULL) {
            Py_DECREF(rendered);
            return NULL;
        }
        PyList_SET_ITEM(rendered, i, line);
    }
    for (; i < count; i++) { /* the list got shorter: the lines it no longer has are left to Python */
        PyList_SET_ITEM(rendered, i, Py_NewRef(Py_None));
    }
    return rendered;
}

static PyMethodDef Ipv4Lines_methods[] = {
    {"render", (PyCFunction)Ipv4Lines_render, METH_VARARGS,
     "render(lines: list of bytes, make_missing=None) -> list: each line's JSON document, or None where "
     "Python answers; make_missing(line, City offset, City network, ASN offset, ASN network) is called for "
     "each line located in the files whose template, ASN block or time-zone block is not made yet, and "
     "the line is joined once more after it"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject Ipv4LinesType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "mmdb_records.Ipv4Lines",
    .tp_doc = "Ipv4Lines(city, asn, ranges, templates, asn_parts, no_asn, zones): dotted-quad lines as JSON from templates",
    .tp_basicsize = sizeof(Ipv4Lines),
    .tp_itemsize = 0,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Ipv4Lines_init,
    .tp_dealloc = (destructor)Ipv4Lines_dealloc,
    .tp_methods = Ipv4Lines_methods,
};

int add_ipv4_lines(PyObject *module) {
    if (PyType_Ready(&Ipv4LinesType) < 0) {
        return -1;
    }
    Py_INCREF(&Ipv4LinesType);
    if (PyModule_AddObject(module, "Ipv4Lines", (PyObject *)&Ipv4LinesType) < 0) {
        Py_DECREF(&Ipv4LinesType);
        return -1;
    }
    return 0;
}
