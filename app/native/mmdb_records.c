/* mmdb_records: a MaxMind DB record's offset without decoding it, and the values a field table
 * names read at an offset, with names in one language.
 *
 * Why this exists (docs/architecture.md, "The record path"): many networks share one record, and
 * the maxminddb extension decodes the whole record (every name in every language) on each lookup.
 * The lookup service keeps what it makes of a record per offset, so the adapters need the offset
 * first, and on a miss the record's values without a second walk down the tree. libmaxminddb (the
 * system's, linked here) opens and maps the file and walks the tree.
 *
 * `read` decodes a whole record as the maxminddb extension does (dict, list, str, int, float,
 * bool, bytes), from libmaxminddb's entry list. `read_fields` takes only the values of the field
 * table the reader was opened with (app/record_fields.py declares the tables; nothing here knows
 * City or ASN records): it reads the record's bytes in the data section itself, every read checked
 * against the section's end, and steps over what the table does not name without decoding it.
 * app/record_offsets.py checks both against the extension and the table's Python reading on every
 * file before the service relies on them.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <arpa/inet.h>
#include <maxminddb.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include "offset_reader.h"


static PyObject *DecodeError;

static struct Table *compile_table(PyObject *spec);
static void free_table(struct Table *table);

static int OffsetReader_init(OffsetReader *self, PyObject *args, PyObject *kwds) {
    PyObject *path = NULL, *fields = Py_None;
    static char *keywords[] = {"path", "fields", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O&|O", keywords, PyUnicode_FSConverter, &path, &fields)) {
        return -1;
    }
    if (self->open) {
        PyErr_SetString(PyExc_RuntimeError, "already open");
        Py_DECREF(path);
        return -1;
    }
    int status;
    Py_BEGIN_ALLOW_THREADS
    status = MMDB_open(PyBytes_AS_STRING(path), MMDB_MODE_MMAP, &self->mmdb);
    Py_END_ALLOW_THREADS
    Py_DECREF(path);
    if (status != MMDB_SUCCESS) {
        PyErr_Format(PyExc_OSError, "cannot open the database: %s", MMDB_strerror(status));
        return -1;
    }
    self->open = 1;
    self->ipv4_shift = self->mmdb.metadata.ip_version == 6 ? 96 : 0;
    if (fields != Py_None) {
        self->table = compile_table(fields);
        if (self->table == NULL) {
            return -1;
        }
    }
    return 0;
}

static void OffsetReader_dealloc(OffsetReader *self) {
    if (self->open) {
        MMDB_close(&self->mmdb);
        self->open = 0;
    }
    free_table(self->table);
    self->table = NULL;
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int check_open(OffsetReader *self) {
    if (!self->open) {
        PyErr_SetString(PyExc_ValueError, "the database is closed");
        return 0;
    }
    return 1;
}

/* locate(address: int, version: int) -> (offset or None, prefix length, network text or None) */
static PyObject *OffsetReader_locate(OffsetReader *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "locate(address, version) takes 2 arguments");
        return NULL;
    }
    if (!check_open(self)) {
        return NULL;
    }
    long version = PyLong_AsLong(args[1]);
    if (version == -1 && PyErr_Occurred()) {
        return NULL;
    }
    struct sockaddr_in v4;
    struct sockaddr_in6 v6;
    const struct sockaddr *sockaddr;
    int shift = 0;
    if (version == 4) {
        unsigned long value = PyLong_AsUnsignedLong(args[0]);
        if (value == (unsigned long)-1 && PyErr_Occurred()) {
            return NULL;
        }
        if (value > 0xFFFFFFFFUL) {
            PyErr_SetString(PyExc_ValueError, "not an IPv4 address");
            return NULL;
        }
        memset(&v4, 0, sizeof v4);
        v4.sin_family = AF_INET;
        v4.sin_addr.s_addr = htonl((uint32_t)value);
        sockaddr = (const struct sockaddr *)&v4;
        shift = self->ipv4_shift;
    } else if (version == 6) {
        unsigned char packed[16];
        PyObject *sixty_four = PyLong_FromLong(64);
        PyObject *high = sixty_four ? PyNumber_Rshift(args[0], sixty_four) : NULL;
        Py_XDECREF(sixty_four);
        if (high == NULL) {
            return NULL;
        }
        unsigned long long high_bits = PyLong_AsUnsignedLongLong(high);
        Py_DECREF(high);
        if (high_bits == (unsigned long long)-1 && PyErr_Occurred()) {
            return NULL;
        }
        unsigned long long low_bits = PyLong_AsUnsignedLongLongMask(args[0]);
        if (low_bits == (unsigned long long)-1 && PyErr_Occurred()) {
            return NULL;
        }
        for (int i = 0; i < 8; i++) {
            packed[7 - i] = (unsigned char)(high_bits >> (8 * i));
            packed[15 - i] = (unsigned char)(low_bits >> (8 * i));
        }
        memset(&v6, 0, sizeof v6);
        v6.sin6_family = AF_INET6;
        memcpy(&v6.sin6_addr, packed, 16);
        sockaddr = (const struct sockaddr *)&v6;
    } else {
        PyErr_SetString(PyExc_ValueError, "version must be 4 or 6");
        return NULL;
    }
    int error = MMDB_SUCCESS;
    MMDB_lookup_result_s result = MMDB_lookup_sockaddr(&self->mmdb, sockaddr, &error);
    if (error != MMDB_SUCCESS) {
        PyErr_Format(DecodeError, "lookup failed: %s", MMDB_strerror(error));
        return NULL;
    }
    int prefix = (int)result.netmask - shift;
    PyObject *network = NULL;
    if (version == 4 && prefix >= 0 && prefix <= 32) {
        char text[24];
        network = PyUnicode_FromStringAndSize(text, ipv4_network_text(ntohl(v4.sin_addr.s_addr), prefix, text));
    } else if (version == 6 && prefix >= 0 && prefix <= 128) {
        unsigned char *bytes = (unsigned char *)&v6.sin6_addr;
        for (int bit = prefix; bit < 128; bit++) {
            bytes[bit / 8] &= (unsigned char)~(0x80U >> (bit % 8));
        }
        char text[INET6_ADDRSTRLEN];
        /* ::ffff:a.b.c.d and the like are left to the caller, which writes them as ipaddress does */
        if (inet_ntop(AF_INET6, &v6.sin6_addr, text, sizeof text) != NULL && strchr(text, '.') == NULL) {
            network = PyUnicode_FromFormat("%s/%d", text, prefix);
        } else {
            network = Py_NewRef(Py_None);
        }
    } else {
        network = Py_NewRef(Py_None);
    }
    if (network == NULL) {
        return NULL;
    }
    if (!result.found_entry) {
        return Py_BuildValue("(OiN)", Py_None, prefix, network);
    }
    return Py_BuildValue("(kiN)", (unsigned long)result.entry.offset, prefix, network);
}

static PyObject *truncated(void) {
    PyErr_SetString(DecodeError, "the record's data ends early");
    return NULL;
}

static PyObject *from_uint128(const MMDB_entry_data_s *data) {
    unsigned char bytes[16];
#if MMDB_UINT128_IS_BYTE_ARRAY
    memcpy(bytes, data->uint128, 16);
#else
    mmdb_uint128_t value = data->uint128;
    for (int i = 15; i >= 0; i--) {
        bytes[i] = (unsigned char)(value & 0xFF);
        value >>= 8;
    }
#endif
    PyObject *from_bytes = PyBytes_FromStringAndSize((const char *)bytes, 16);
    if (from_bytes == NULL) {
        return NULL;
    }
    PyObject *value_object = PyObject_CallMethod((PyObject *)&PyLong_Type, "from_bytes", "Os", from_bytes, "big");
    Py_DECREF(from_bytes);
    return value_object;
}

static PyObject *decode_value(MMDB_entry_data_list_s **cursor);

static PyObject *decode_map(MMDB_entry_data_list_s **cursor, uint32_t size) {
    PyObject *map = PyDict_New();
    if (map == NULL) {
        return NULL;
    }
    for (uint32_t i = 0; i < size; i++) {
        MMDB_entry_data_list_s *key_node = *cursor;
        if (key_node == NULL) {
            Py_DECREF(map);
            return truncated();
        }
        if (key_node->entry_data.type != MMDB_DATA_TYPE_UTF8_STRING) {
            Py_DECREF(map);
            PyErr_SetString(DecodeError, "a map key is not a string");
            return NULL;
        }
        *cursor = key_node->next;
        PyObject *key = PyUnicode_DecodeUTF8(key_node->entry_data.utf8_string, key_node->entry_data.data_size, NULL);
        if (key == NULL) {
            Py_DECREF(map);
            return NULL;
        }
        PyObject *value = decode_value(cursor);
        if (value == NULL || PyDict_SetItem(map, key, value) < 0) {
            Py_DECREF(key);
            Py_XDECREF(value);
            Py_DECREF(map);
            return NULL;
        }
        Py_DECREF(key);
        Py_DECREF(value);
    }
    return map;
}

static PyObject *decode_value(MMDB_entry_data_list_s **cursor) {
    MMDB_entry_data_list_s *node = *cursor;
    if (node == NULL) {
        return truncated();
    }
    *cursor = node->next;
    const MMDB_entry_data_s *data = &node->entry_data;
    switch (data->type) {
    case MMDB_DATA_TYPE_MAP:
        return decode_map(cursor, data->data_size);
    case MMDB_DATA_TYPE_ARRAY: {
        PyObject *list = PyList_New(data->data_size);
        if (list == NULL) {
            return NULL;
        }
        for (uint32_t i = 0; i < data->data_size; i++) {
            PyObject *item = decode_value(cursor);
            if (item == NULL) {
                Py_DECREF(list);
                return NULL;
            }
            PyList_SET_ITEM(list, i, item);
        }
        return list;
    }
    case MMDB_DATA_TYPE_UTF8_STRING:
        return PyUnicode_DecodeUTF8(data->utf8_string, data->data_size, NULL);
    case MMDB_DATA_TYPE_DOUBLE:
        return PyFloat_FromDouble(data->double_value);
    case MMDB_DATA_TYPE_FLOAT:
        return PyFloat_FromDouble(data->float_value);
    case MMDB_DATA_TYPE_BYTES:
        return PyBytes_FromStringAndSize((const char *)data->bytes, data->data_size);
    case MMDB_DATA_TYPE_UINT16:
        return PyLong_FromLong(data->uint16);
    case MMDB_DATA_TYPE_UINT32:
        return PyLong_FromUnsignedLong(data->uint32);
    case MMDB_DATA_TYPE_INT32:
        return PyLong_FromLong(data->int32);
    case MMDB_DATA_TYPE_UINT64:
        return PyLong_FromUnsignedLongLong(data->uint64);
    case MMDB_DATA_TYPE_UINT128:
        return from_uint128(data);
    case MMDB_DATA_TYPE_BOOLEAN:
        return PyBool_FromLong(data->boolean);
    default:
        PyErr_Format(DecodeError, "unknown data type %u", (unsigned)data->type);
        return NULL;
    }
}

/* The entry list of the record at a data-section offset, or NULL with an exception set. */
static MMDB_entry_data_list_s *entry_list_at(OffsetReader *self, PyObject *offset_object) {
    if (!check_open(self)) {
        return NULL;
    }
    unsigned long offset = PyLong_AsUnsignedLong(offset_object);
    if (offset == (unsigned long)-1 && PyErr_Occurred()) {
        return NULL;
    }
    if (offset > UINT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "offset out of range");
        return NULL;
    }
    MMDB_entry_s entry = {.mmdb = &self->mmdb, .offset = (uint32_t)offset};
    MMDB_entry_data_list_s *list = NULL;
    int status = MMDB_get_entry_data_list(&entry, &list);
    if (status != MMDB_SUCCESS) {
        MMDB_free_entry_data_list(list);
        PyErr_Format(DecodeError, "cannot decode the record: %s", MMDB_strerror(status));
        return NULL;
    }
    if (list == NULL) {
        truncated();
    }
    return list;
}

/* read(offset: int) -> the whole record at that data-section offset, as the extension decodes it */
static PyObject *OffsetReader_read(OffsetReader *self, PyObject *offset) {
    MMDB_entry_data_list_s *list = entry_list_at(self, offset);
    if (list == NULL) {
        return NULL;
    }
    MMDB_entry_data_list_s *cursor = list;
    PyObject *record = decode_value(&cursor);
    MMDB_free_entry_data_list(list);
    return record;
}

/* ---- read_fields: the values a field table names, read straight off the entry list ----
 *
 * The table is app/record_fields.py's (`FieldTable.spec`), handed to OffsetReader(path, fields):
 * a tuple of (path: tuple of map keys, kind: str, sub-table or None), compiled here into a tree of
 * map keys. read_fields returns one value per field, in the table's order. Nothing about City or
 * ASN records is known here. */

enum { K_TEXT, K_WHOLE, K_REAL, K_FLAG, K_NAME, K_PRESENT, K_LIST, K_MAP };
/* The kinds' names, as app/record_fields.py spells them (KINDS there). */
static const char *const KIND_NAMES[] = {"text", "whole", "real", "flag", "name", "present", "list"};
#define KIND_COUNT 7

typedef struct Table Table;
typedef struct Node Node;

struct Node {
    char *key;
    size_t key_length;
    int kind;         /* a leaf's kind, or K_MAP for a key whose value holds more keys */
    int slot;         /* a leaf's value index; a K_MAP's "present" index, or -1 */
    Node *children;   /* K_MAP: the keys wanted inside */
    int child_count;
    Table *items;     /* K_LIST: the table each item is read with */
};

struct Table {
    Node root;        /* the record (or list item) itself: a K_MAP without a key */
    int count;        /* values per read */
    unsigned char *kinds;
};

static void free_node(Node *node);

static void free_table(Table *table) {
    if (table == NULL) {
        return;
    }
    free_node(&table->root);
    PyMem_Free(table->kinds);
    PyMem_Free(table);
}

static void free_node(Node *node) {
    for (int i = 0; i < node->child_count; i++) {
        free_node(&node->children[i]);
    }
    PyMem_Free(node->children);
    PyMem_Free(node->key);
    free_table(node->items);
}

/* The child of `node` for `key`, added when `create` (as kind); NULL when absent or on error. */
static Node *child_for(Node *node, const char *key, size_t length, int create, int kind) {
    for (int i = 0; i < node->child_count; i++) {
        Node *child = &node->children[i];
        if (child->key_length == length && memcmp(child->key, key, length) == 0) {
            return child;
        }
    }
    if (!create) {
        return NULL;
    }
    Node *grown = PyMem_Realloc(node->children, sizeof(Node) * (size_t)(node->child_count + 1));
    if (grown == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    node->children = grown;
    Node *child = &grown[node->child_count];
    memset(child, 0, sizeof *child);
    child->key = PyMem_Malloc(length ? length : 1);
    if (child->key == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    memcpy(child->key, key, length);
    child->key_length = length;
    child->kind = kind;
    child->slot = -1;
    node->child_count++;
    return child;
}

static Table *compile_table(PyObject *spec);

static int compile_field(Table *table, int index, PyObject *field) {
    PyObject *path, *kind_object, *items;
    if (!PyTuple_Check(field) || !PyArg_ParseTuple(field, "O!UO", &PyTuple_Type, &path, &kind_object, &items)) {
        PyErr_SetString(PyExc_TypeError, "a field is (path: tuple, kind: str, sub-table or None)");
        return 0;
    }
    const char *kind_name = PyUnicode_AsUTF8(kind_object);
    if (kind_name == NULL) {
        return 0;
    }
    int kind = -1;
    for (int k = 0; k < KIND_COUNT; k++) {
        if (strcmp(kind_name, KIND_NAMES[k]) == 0) {
            kind = k;
        }
    }
    Py_ssize_t depth = PyTuple_GET_SIZE(path);
    if (kind < 0 || depth == 0 || (kind == K_LIST) != (items != Py_None)) {
        PyErr_Format(PyExc_ValueError, "field %d: unknown kind %s, empty path or misplaced sub-table", index, kind_name);
        return 0;
    }
    Node *node = &table->root;
    for (Py_ssize_t d = 0; d < depth; d++) {
        Py_ssize_t length;
        const char *key = PyUnicode_AsUTF8AndSize(PyTuple_GET_ITEM(path, d), &length);
        if (key == NULL) {
            return 0;
        }
        int last = d == depth - 1;
        int wanted = last && kind != K_PRESENT ? kind : K_MAP;
        Node *existing = child_for(node, key, (size_t)length, 0, 0);
        if (existing != NULL && (existing->kind != K_MAP || wanted != K_MAP)) {
            PyErr_Format(PyExc_ValueError, "field %d: its path is another field's", index);
            return 0;
        }
        node = existing ? existing : child_for(node, key, (size_t)length, 1, wanted);
        if (node == NULL) {
            return 0;
        }
    }
    if (kind == K_PRESENT && node->slot >= 0) {
        PyErr_Format(PyExc_ValueError, "field %d: its path is another field's", index);
        return 0;
    }
    node->slot = index;
    if (kind == K_LIST) {
        node->items = compile_table(items);
        if (node->items == NULL) {
            return 0;
        }
    }
    table->kinds[index] = (unsigned char)kind;
    return 1;
}

static Table *compile_table(PyObject *spec) {
    if (!PyTuple_Check(spec) || PyTuple_GET_SIZE(spec) == 0 || PyTuple_GET_SIZE(spec) > 256) {
        PyErr_SetString(PyExc_TypeError, "a field table is a tuple of 1 to 256 fields");
        return NULL;
    }
    Table *table = PyMem_Calloc(1, sizeof(Table));
    if (table == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    table->root.kind = K_MAP;
    table->root.slot = -1;
    table->count = (int)PyTuple_GET_SIZE(spec);
    table->kinds = PyMem_Calloc((size_t)table->count, 1);
    if (table->kinds == NULL) {
        PyErr_NoMemory();
        free_table(table);
        return NULL;
    }
    for (int i = 0; i < table->count; i++) {
        if (!compile_field(table, i, PyTuple_GET_ITEM(spec, i))) {
            free_table(table);
            return NULL;
        }
    }
    return table;
}

/* The language names are taken in (English when it has none). */
typedef struct {
    const char *language;
    size_t language_length;
} Language;

/* read_fields walks the record's bytes in the data section itself (the MaxMind DB format's control
 * bytes, pointers and sizes), reading only the keys the table names and stepping over the rest
 * without decoding it: a pointer to a value nobody wants is never followed. libmaxminddb's entry
 * list would decode the whole record first, every language of every name, which cost more than
 * the rest of a lookup. Every read is checked against the end of the data section. */
typedef struct {
    const uint8_t *data;
    uint32_t size;
} Section;

typedef struct {
    uint32_t type;     /* an MMDB_DATA_TYPE_*; never a pointer once followed */
    uint32_t size;     /* payload bytes; a map's pairs or an array's items; a boolean's value */
    uint32_t payload;  /* where the payload, or the first entry of a map or array, starts */
    int followed;      /* reached through a pointer: the entries are not where the caller reads on */
} Value;

#define MAX_DEPTH 512 /* libmaxminddb's limit on nested maps and arrays */

static int bad_data(const char *what) {
    PyErr_Format(DecodeError, "the record's data is damaged: %s", what);
    return 0;
}

/* The value at *pos. *pos moves past what is read here: a scalar's payload, a container's control
 * bytes (its entries follow), or the pointer itself when `follow` resolved it. */
static int decode_control(const Section *section, uint32_t *pos, Value *value, int follow) {
    uint32_t at = *pos;
    const uint8_t *data = section->data;
    if (at >= section->size) {
        return bad_data("it ends early");
    }
    uint8_t control = data[at++];
    uint32_t type = control >> 5;
    if (type == MMDB_DATA_TYPE_POINTER) {
        uint32_t extra = ((control >> 3) & 3) + 1;
        if (extra > section->size - at) {
            return bad_data("it ends early");
        }
        uint32_t target = extra == 4 ? 0 : (uint32_t)(control & 7);
        for (uint32_t i = 0; i < extra; i++) {
            target = (target << 8) | data[at + i];
        }
        static const uint32_t bias[] = {0, 0, 2048, 526336, 0};
        target += bias[extra];
        *pos = at + extra;
        if (!follow) {
            value->type = MMDB_DATA_TYPE_POINTER;
            value->followed = 0;
            return 1;
        }
        uint32_t there = target;
        if (!decode_control(section, &there, value, 0)) {
            return 0;
        }
        if (value->type == MMDB_DATA_TYPE_POINTER) {
            return bad_data("a pointer points to a pointer");
        }
        value->followed = 1;
        return 1;
    }
    if (type == MMDB_DATA_TYPE_EXTENDED) {
        if (at >= section->size) {
            return bad_data("it ends early");
        }
        type = 7 + data[at++];
        if (type < 8 || type > 15) {
            return bad_data("unknown data type");
        }
    }
    uint32_t size = control & 0x1f;
    if (size >= 29) {
        uint32_t extra = size - 28;
        if (extra > section->size - at) {
            return bad_data("it ends early");
        }
        uint32_t more = 0;
        for (uint32_t i = 0; i < extra; i++) {
            more = (more << 8) | data[at + i];
        }
        static const uint32_t base[] = {0, 29, 285, 65821};
        size = base[extra] + more;
        at += extra;
    }
    value->type = type;
    value->size = size;
    value->payload = at;
    value->followed = 0;
    switch (type) {
    case MMDB_DATA_TYPE_MAP:
    case MMDB_DATA_TYPE_ARRAY:
        break;
    case MMDB_DATA_TYPE_BOOLEAN:
        if (size > 1) {
            return bad_data("a boolean is neither 0 nor 1");
        }
        break;
    case MMDB_DATA_TYPE_CONTAINER:
    case MMDB_DATA_TYPE_END_MARKER:
        return bad_data("a data cache container or end marker inside a record");
    default: {
        static const uint32_t widest[16] = {[MMDB_DATA_TYPE_DOUBLE] = 8, [MMDB_DATA_TYPE_UINT16] = 2,
                                            [MMDB_DATA_TYPE_UINT32] = 4, [MMDB_DATA_TYPE_INT32] = 4,
                                            [MMDB_DATA_TYPE_UINT64] = 8, [MMDB_DATA_TYPE_UINT128] = 16,
                                            [MMDB_DATA_TYPE_FLOAT] = 4};
        if (widest[type] && (type == MMDB_DATA_TYPE_DOUBLE || type == MMDB_DATA_TYPE_FLOAT ? size != widest[type]
                                                                                          : size > widest[type])) {
            return bad_data("a number of the wrong size");
        }
        if (size > section->size - at) {
            return bad_data("it ends early");
        }
        at += size;
    }
    }
    *pos = at;
    return 1;
}

static int skip_entries(const Section *section, uint32_t *pos, const Value *value, int depth);

/* Steps over the value at *pos without decoding it (a pointer is not followed). */
static int skip_at(const Section *section, uint32_t *pos, int depth) {
    Value value;
    return decode_control(section, pos, &value, 0) && skip_entries(section, pos, &value, depth);
}

/* After decode_control: steps over a container's entries when they follow at *pos. */
static int skip_entries(const Section *section, uint32_t *pos, const Value *value, int depth) {
    if (value->followed || (value->type != MMDB_DATA_TYPE_MAP && value->type != MMDB_DATA_TYPE_ARRAY)) {
        return 1;
    }
    if (depth >= MAX_DEPTH) {
        return bad_data("maps and arrays nested too deep");
    }
    uint64_t entries = value->type == MMDB_DATA_TYPE_MAP ? 2 * (uint64_t)value->size : value->size;
    for (uint64_t i = 0; i < entries; i++) {
        if (!skip_at(section, pos, depth + 1)) {
            return 0;
        }
    }
    return 1;
}

/* A scalar's Python value (decode_control checked its bounds and size). */
static PyObject *scalar(const Section *section, const Value *value) {
    const uint8_t *bytes = section->data + value->payload;
    uint64_t number = 0;
    switch (value->type) {
    case MMDB_DATA_TYPE_UTF8_STRING:
        return PyUnicode_DecodeUTF8((const char *)bytes, value->size, NULL);
    case MMDB_DATA_TYPE_BOOLEAN:
        return PyBool_FromLong(value->size);
    case MMDB_DATA_TYPE_UINT128:
        if (value->size > 8) {
            return PyObject_CallMethod((PyObject *)&PyLong_Type, "from_bytes", "y#s", (const char *)bytes,
                                       (Py_ssize_t)value->size, "big");
        }
        break;
    default:
        break;
    }
    for (uint32_t i = 0; i < value->size; i++) {
        number = (number << 8) | bytes[i];
    }
    switch (value->type) {
    case MMDB_DATA_TYPE_DOUBLE: {
        double real;
        memcpy(&real, &number, sizeof real);
        return PyFloat_FromDouble(real);
    }
    case MMDB_DATA_TYPE_FLOAT: {
        uint32_t narrow = (uint32_t)number;
        float real;
        memcpy(&real, &narrow, sizeof real);
        return PyFloat_FromDouble(real);
    }
    case MMDB_DATA_TYPE_INT32:
        return PyLong_FromLong((int32_t)(uint32_t)number);
    case MMDB_DATA_TYPE_UINT16:
    case MMDB_DATA_TYPE_UINT32:
    case MMDB_DATA_TYPE_UINT64:
    case MMDB_DATA_TYPE_UINT128:
        return PyLong_FromUnsignedLongLong(number);
    default:
        PyErr_Format(DecodeError, "data type %u is not a value read here", (unsigned)value->type);
        return NULL;
    }
}

/* The key at *pos (a string, or a pointer to one): its bytes, with *pos moved to its value. */
static const char *read_key(const Section *section, uint32_t *pos, uint32_t *length) {
    Value key;
    if (!decode_control(section, pos, &key, 1)) {
        return NULL;
    }
    if (key.type != MMDB_DATA_TYPE_UTF8_STRING) {
        bad_data("a map key is not a string");
        return NULL;
    }
    *length = key.size;
    return (const char *)section->data + key.payload;
}

static int same_key(const char *key, uint32_t length, const char *text, size_t text_length) {
    return length == text_length && memcmp(key, text, length) == 0;
}

static int is_kind(uint32_t type, int kind) {
    switch (kind) {
    case K_TEXT:
        return type == MMDB_DATA_TYPE_UTF8_STRING;
    case K_WHOLE:
        return type == MMDB_DATA_TYPE_UINT16 || type == MMDB_DATA_TYPE_UINT32 || type == MMDB_DATA_TYPE_INT32 ||
               type == MMDB_DATA_TYPE_UINT64 || type == MMDB_DATA_TYPE_UINT128;
    case K_REAL:
        return type == MMDB_DATA_TYPE_DOUBLE || type == MMDB_DATA_TYPE_FLOAT;
    case K_FLAG:
        return type == MMDB_DATA_TYPE_BOOLEAN;
    default:
        return 0;
    }
}

/* The value at *pos when it is a map: *value describes it and *entries is where its pairs start;
 * returns 1 for a map, 0 for anything else (stepped over), -1 with an exception set. */
static int enter_map(const Section *section, uint32_t *pos, Value *value, uint32_t *entries, int depth) {
    if (!decode_control(section, pos, value, 1)) {
        return -1;
    }
    if (value->type != MMDB_DATA_TYPE_MAP) {
        return skip_entries(section, pos, value, depth) ? 0 : -1;
    }
    if (depth >= MAX_DEPTH) {
        bad_data("maps and arrays nested too deep");
        return -1;
    }
    *entries = value->followed ? value->payload : *pos;
    return 1;
}

/* A "names" map: the name in the filter's language, else the English one (kind "name"). */
static int read_name(const Section *section, uint32_t *pos, const Language *filter, PyObject **name, int depth) {
    Value map;
    uint32_t at;
    int entered = enter_map(section, pos, &map, &at, depth);
    if (entered <= 0) {
        return entered == 0;
    }
    PyObject *in_language = NULL, *in_english = NULL;
    int ok = 1;
    for (uint32_t i = 0; ok && i < map.size; i++) {
        uint32_t length;
        const char *key = read_key(section, &at, &length);
        int is_language = key != NULL && same_key(key, length, filter->language, filter->language_length);
        int is_english = key != NULL && same_key(key, length, "en", 2);
        if (key == NULL) {
            ok = 0;
        } else if (is_language || is_english) {
            /* both when the language is English: `names.get(lang) or names.get("en")`; a name that
             * is not text counts as absent */
            Value found;
            if (!decode_control(section, &at, &found, 1)) {
                ok = 0;
            } else if (found.type != MMDB_DATA_TYPE_UTF8_STRING) {
                ok = skip_entries(section, &at, &found, depth + 1);
            } else {
                PyObject *text = scalar(section, &found);
                if (text == NULL) {
                    ok = 0;
                } else {
                    if (is_language) {
                        Py_INCREF(text);
                        Py_XSETREF(in_language, text);
                    }
                    if (is_english) {
                        Py_INCREF(text);
                        Py_XSETREF(in_english, text);
                    }
                    Py_DECREF(text);
                }
            }
        } else {
            ok = skip_at(section, &at, depth + 1);
        }
    }
    if (ok && !map.followed) {
        *pos = at;
    }
    if (ok && in_language != NULL && PyUnicode_GET_LENGTH(in_language) > 0) {
        Py_XSETREF(*name, in_language);
        in_language = NULL;
    } else if (ok) {
        Py_XSETREF(*name, in_english);
        in_english = NULL;
    }
    Py_XDECREF(in_language);
    Py_XDECREF(in_english);
    return ok;
}

static long read_map(const Section *section, uint32_t *pos, const Node *node, const Language *filter,
                     PyObject **slots, int depth);
static PyObject *read_table(const Section *section, uint32_t *pos, const Table *table, const Language *filter,
                            int depth);

/* An array of maps, each read with the field's sub-table; anything but an array counts as absent. */
static int read_list(const Section *section, uint32_t *pos, const Node *node, const Language *filter,
                     PyObject **slot, int depth) {
    Value array;
    if (!decode_control(section, pos, &array, 1)) {
        return 0;
    }
    if (array.type != MMDB_DATA_TYPE_ARRAY) {
        return skip_entries(section, pos, &array, depth);
    }
    if (depth >= MAX_DEPTH) {
        return bad_data("maps and arrays nested too deep");
    }
    if (array.size > section->size) { /* every item takes a byte at least */
        return bad_data("it ends early");
    }
    uint32_t at = array.followed ? array.payload : *pos;
    PyObject *items = PyTuple_New(array.size);
    if (items == NULL) {
        return 0;
    }
    for (uint32_t i = 0; i < array.size; i++) {
        PyObject *item = read_table(section, &at, node->items, filter, depth + 1);
        if (item == NULL) {
            Py_DECREF(items);
            return 0;
        }
        PyTuple_SET_ITEM(items, i, item);
    }
    if (!array.followed) {
        *pos = at;
    }
    Py_XSETREF(*slot, items);
    return 1;
}

/* The value at *pos for a wanted key. */
static int read_value(const Section *section, uint32_t *pos, const Node *node, const Language *filter,
                      PyObject **slots, int depth) {
    switch (node->kind) {
    case K_MAP: {
        long size = read_map(section, pos, node, filter, slots, depth);
        if (size < 0) {
            return 0;
        }
        if (node->slot >= 0) {
            Py_XSETREF(slots[node->slot], PyBool_FromLong(size > 0));
        }
        return 1;
    }
    case K_NAME:
        return read_name(section, pos, filter, &slots[node->slot], depth);
    case K_LIST:
        return read_list(section, pos, node, filter, &slots[node->slot], depth);
    default: {
        Value value;
        if (!decode_control(section, pos, &value, 1)) {
            return 0;
        }
        if (!is_kind(value.type, node->kind)) {
            return skip_entries(section, pos, &value, depth);
        }
        PyObject *decoded = scalar(section, &value);
        if (decoded == NULL) {
            return 0;
        }
        Py_XSETREF(slots[node->slot], decoded); /* the last of repeated keys wins, as in a dict */
        return 1;
    }
    }
}

/* A map: the wanted keys read into slots, the rest stepped over. Returns the map's size (0 when
 * the value is not a map), -1 with an exception set. */
static long read_map(const Section *section, uint32_t *pos, const Node *node, const Language *filter,
                     PyObject **slots, int depth) {
    Value map;
    uint32_t at;
    int entered = enter_map(section, pos, &map, &at, depth);
    if (entered <= 0) {
        return entered;
    }
    for (uint32_t i = 0; i < map.size; i++) {
        uint32_t length;
        const char *key = read_key(section, &at, &length);
        if (key == NULL) {
            return -1;
        }
        const Node *child = child_for((Node *)node, key, length, 0, 0);
        if (!(child == NULL ? skip_at(section, &at, depth + 1)
                            : read_value(section, &at, child, filter, slots, depth + 1))) {
            return -1;
        }
    }
    if (!map.followed) {
        *pos = at;
    }
    return (long)map.size;
}

/* The table's values for the value at *pos, as a tuple (absent values None, "present" False). */
static PyObject *read_table(const Section *section, uint32_t *pos, const Table *table, const Language *filter,
                            int depth) {
    PyObject *small[32] = {NULL};
    PyObject **slots = table->count <= 32 ? small : PyMem_Calloc((size_t)table->count, sizeof(PyObject *));
    if (slots == NULL) {
        return PyErr_NoMemory();
    }
    int ok = read_map(section, pos, &table->root, filter, slots, depth) >= 0;
    PyObject *result = ok ? PyTuple_New(table->count) : NULL;
    for (int i = 0; i < table->count; i++) {
        if (result == NULL) {
            Py_XDECREF(slots[i]);
            continue;
        }
        PyObject *value = slots[i];
        if (value == NULL) {
            value = Py_NewRef(table->kinds[i] == K_PRESENT ? Py_False : Py_None);
        }
        PyTuple_SET_ITEM(result, i, value);
    }
    if (slots != small) {
        PyMem_Free(slots);
    }
    return result;
}

/* read_fields(offset: int, language: str) -> the table's values for the record at offset */
static PyObject *OffsetReader_read_fields(OffsetReader *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "read_fields(offset, language) takes 2 arguments");
        return NULL;
    }
    if (self->table == NULL) {
        PyErr_SetString(PyExc_TypeError, "this reader was opened without a field table");
        return NULL;
    }
    if (!check_open(self)) {
        return NULL;
    }
    Py_ssize_t length;
    Language filter;
    filter.language = PyUnicode_AsUTF8AndSize(args[1], &length);
    if (filter.language == NULL) {
        return NULL;
    }
    filter.language_length = (size_t)length;
    unsigned long offset = PyLong_AsUnsignedLong(args[0]);
    if (offset == (unsigned long)-1 && PyErr_Occurred()) {
        return NULL;
    }
    const Section section = {self->mmdb.data_section, self->mmdb.data_section_size};
    if (offset >= section.size) {
        PyErr_SetString(PyExc_ValueError, "offset out of range");
        return NULL;
    }
    uint32_t pos = (uint32_t)offset;
    return read_table(&section, &pos, self->table, &filter, 0);
}


static PyObject *OffsetReader_close(OffsetReader *self, PyObject *Py_UNUSED(ignored)) {
    if (self->open) {
        MMDB_close(&self->mmdb);
        self->open = 0;
    }
    Py_RETURN_NONE;
}

static PyObject *OffsetReader_ip_version(OffsetReader *self, void *Py_UNUSED(closure)) {
    if (!check_open(self)) {
        return NULL;
    }
    return PyLong_FromLong(self->mmdb.metadata.ip_version);
}

static PyMethodDef OffsetReader_methods[] = {
    {"locate", (PyCFunction)(void (*)(void))OffsetReader_locate, METH_FASTCALL,
     "locate(address: int, version: int) -> (offset or None, prefix length, network text or None)"},
    {"read", (PyCFunction)OffsetReader_read, METH_O, "read(offset: int) -> the whole record at offset"},
    {"read_fields", (PyCFunction)(void (*)(void))OffsetReader_read_fields, METH_FASTCALL,
     "read_fields(offset: int, language: str) -> the field table's values for the record at offset"},
    {"close", (PyCFunction)OffsetReader_close, METH_NOARGS, "close() releases the map"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef OffsetReader_getset[] = {
    {"ip_version", (getter)OffsetReader_ip_version, NULL, "the tree's IP version (4 or 6)", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyTypeObject OffsetReaderType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "mmdb_records.OffsetReader",
    .tp_doc = "OffsetReader(path, fields=None): record offsets, and records or a field table's values at offsets",
    .tp_basicsize = sizeof(OffsetReader),
    .tp_itemsize = 0,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)OffsetReader_init,
    .tp_dealloc = (destructor)OffsetReader_dealloc,
    .tp_methods = OffsetReader_methods,
    .tp_getset = OffsetReader_getset,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "mmdb_records",
    .m_doc = "MaxMind DB record offsets, and records decoded at an offset (libmaxminddb).",
    .m_size = -1,
};

PyMODINIT_FUNC PyInit_mmdb_records(void) {
    if (PyType_Ready(&OffsetReaderType) < 0) {
        return NULL;
    }
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) {
        return NULL;
    }
    DecodeError = PyErr_NewExceptionWithDoc("mmdb_records.DecodeError",
                                            "The file's data could not be read (damaged or not a MaxMind DB).",
                                            PyExc_ValueError, NULL);
    if (DecodeError == NULL || PyModule_AddObject(m, "DecodeError", DecodeError) < 0) {
        Py_XDECREF(DecodeError);
        Py_DECREF(m);
        return NULL;
    }
    Py_INCREF(&OffsetReaderType);
    if (PyModule_AddObject(m, "OffsetReader", (PyObject *)&OffsetReaderType) < 0) {
        Py_DECREF(&OffsetReaderType);
        Py_DECREF(m);
        return NULL;
    }
    if (add_ipv4_lines(m) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    if (PyModule_AddStringConstant(m, "libmaxminddb_version", MMDB_lib_version()) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
