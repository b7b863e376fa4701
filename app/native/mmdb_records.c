/* mmdb_records: a MaxMind DB record's offset without decoding it, and the values a field table
 * names read at an offset, with names in one language.
 *
 * Why this exists (docs/architecture.md, "The record path"): many networks share one record, and
 * the maxminddb extension decodes the whole record (every name in every language) on each lookup.
 * The lookup service keeps what it makes of a record per offset, so the adapters need the offset
 * first, and on a miss the record's values without a second walk down the tree. libmaxminddb (the
 * system's, linked here) does the tree walk and all reading of the file, with its own bounds
 * checks; this module only turns libmaxminddb's entry list into Python objects.
 *
 * `read` decodes a whole record as the maxminddb extension does (dict, list, str, int, float,
 * bool, bytes); `read_fields` takes only the values of the field table the reader was opened
 * with (app/record_fields.py declares the tables; nothing here knows City or ASN records) and
 * makes no Python object for the rest. app/record_offsets.py checks both against the extension
 * and the table's Python reading on every file before the service relies on them.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <arpa/inet.h>
#include <maxminddb.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

typedef struct {
    PyObject_HEAD
    MMDB_s mmdb;
    int open;
    /* libmaxminddb counts an IPv4 address's prefix within the IPv6 tree; the extension (and so
     * every caller) counts it within IPv4. */
    int ipv4_shift;
    struct Table *table; /* what read_fields reads (app/record_fields.py), or NULL */
} OffsetReader;

static PyObject *DecodeError;

struct Table;
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
        uint32_t bits = ntohl(v4.sin_addr.s_addr);
        uint32_t mask = prefix == 0 ? 0 : 0xFFFFFFFFU << (32 - prefix);
        bits &= mask;
        network = PyUnicode_FromFormat("%u.%u.%u.%u/%d", (unsigned)(bits >> 24), (unsigned)((bits >> 16) & 0xFF),
                                       (unsigned)((bits >> 8) & 0xFF), (unsigned)(bits & 0xFF), prefix);
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

/* The value subtree at *cursor, skipped. */
static int skip_value(MMDB_entry_data_list_s **cursor) {
    MMDB_entry_data_list_s *node = *cursor;
    if (node == NULL) {
        return 0;
    }
    *cursor = node->next;
    uint32_t type = node->entry_data.type;
    if (type == MMDB_DATA_TYPE_MAP) {
        for (uint32_t i = 0; i < node->entry_data.data_size; i++) {
            if (*cursor == NULL) {
                return 0;
            }
            *cursor = (*cursor)->next; /* the key */
            if (!skip_value(cursor)) {
                return 0;
            }
        }
    } else if (type == MMDB_DATA_TYPE_ARRAY) {
        for (uint32_t i = 0; i < node->entry_data.data_size; i++) {
            if (!skip_value(cursor)) {
                return 0;
            }
        }
    }
    return 1;
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

static int key_is(const MMDB_entry_data_s *key, const char *text, size_t length) {
    return key->data_size == length && memcmp(key->utf8_string, text, length) == 0;
}
#define KEY_IS(key, literal) key_is((key), (literal), sizeof(literal) - 1)

/* The next map key: its entry, with *cursor moved to its value; NULL with an exception set. */
static const MMDB_entry_data_s *next_key(MMDB_entry_data_list_s **cursor) {
    MMDB_entry_data_list_s *node = *cursor;
    if (node == NULL) {
        truncated();
        return NULL;
    }
    if (node->entry_data.type != MMDB_DATA_TYPE_UTF8_STRING) {
        PyErr_SetString(DecodeError, "a map key is not a string");
        return NULL;
    }
    *cursor = node->next;
    return &node->entry_data;
}

/* Skips the value at *cursor; 0 with an exception set when the data ends early. */
static int skip(MMDB_entry_data_list_s **cursor) {
    if (!skip_value(cursor)) {
        truncated();
        return 0;
    }
    return 1;
}

/* The value at *cursor when it is a map; anything else is skipped. Returns the map's size (0 when
 * skipped), -1 with an exception set. */
static long enter_map(MMDB_entry_data_list_s **cursor) {
    MMDB_entry_data_list_s *node = *cursor;
    if (node == NULL) {
        truncated();
        return -1;
    }
    if (node->entry_data.type != MMDB_DATA_TYPE_MAP) {
        return skip(cursor) ? 0 : -1;
    }
    *cursor = node->next;
    return (long)node->entry_data.data_size;
}

/* A "names" map: the name in the filter's language, else the English one (kind "name"). */
static int read_name(MMDB_entry_data_list_s **cursor, const Language *filter, PyObject **name) {
    long size = enter_map(cursor);
    if (size < 0) {
        return 0;
    }
    PyObject *in_language = NULL, *in_english = NULL;
    int ok = 1;
    for (long i = 0; ok && i < size; i++) {
        const MMDB_entry_data_s *key = next_key(cursor);
        if (key == NULL) {
            ok = 0;
        } else if ((key_is(key, filter->language, filter->language_length) || KEY_IS(key, "en")) &&
                   *cursor != NULL && (*cursor)->entry_data.type == MMDB_DATA_TYPE_UTF8_STRING) {
            /* both when the language is English: `names.get(lang) or names.get("en")`; a name that
             * is not text counts as absent */
            PyObject *value = decode_value(cursor);
            if (value == NULL) {
                ok = 0;
            } else {
                if (key_is(key, filter->language, filter->language_length)) {
                    Py_INCREF(value);
                    Py_XSETREF(in_language, value);
                }
                if (KEY_IS(key, "en")) {
                    Py_INCREF(value);
                    Py_XSETREF(in_english, value);
                }
                Py_DECREF(value);
            }
        } else if (!skip(cursor)) {
            ok = 0;
        }
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

static long read_map(MMDB_entry_data_list_s **cursor, const Node *node, const Language *filter, PyObject **slots);
static PyObject *read_table(MMDB_entry_data_list_s **cursor, const Table *table, const Language *filter);

/* An array of maps, each read with the field's sub-table; anything but an array counts as absent. */
static int read_list(MMDB_entry_data_list_s **cursor, const Node *node, const Language *filter, PyObject **slot) {
    MMDB_entry_data_list_s *head = *cursor;
    if (head == NULL) {
        truncated();
        return 0;
    }
    if (head->entry_data.type != MMDB_DATA_TYPE_ARRAY) {
        return skip(cursor);
    }
    *cursor = head->next;
    uint32_t count = head->entry_data.data_size;
    PyObject *items = PyTuple_New(count);
    if (items == NULL) {
        return 0;
    }
    for (uint32_t i = 0; i < count; i++) {
        PyObject *item = read_table(cursor, node->items, filter);
        if (item == NULL) {
            Py_DECREF(items);
            return 0;
        }
        PyTuple_SET_ITEM(items, i, item);
    }
    Py_XSETREF(*slot, items);
    return 1;
}

/* The value at *cursor for a wanted key. */
static int read_value(MMDB_entry_data_list_s **cursor, const Node *node, const Language *filter, PyObject **slots) {
    switch (node->kind) {
    case K_MAP: {
        long size = read_map(cursor, node, filter, slots);
        if (size < 0) {
            return 0;
        }
        if (node->slot >= 0) {
            Py_XSETREF(slots[node->slot], PyBool_FromLong(size > 0));
        }
        return 1;
    }
    case K_NAME:
        return read_name(cursor, filter, &slots[node->slot]);
    case K_LIST:
        return read_list(cursor, node, filter, &slots[node->slot]);
    default:
        if (*cursor != NULL && is_kind((*cursor)->entry_data.type, node->kind)) {
            PyObject *value = decode_value(cursor);
            if (value == NULL) {
                return 0;
            }
            Py_XSETREF(slots[node->slot], value); /* the last of repeated keys wins, as in a dict */
            return 1;
        }
        return skip(cursor);
    }
}

/* A map: the wanted keys read into slots, the rest skipped. Returns the map's size (0 when the
 * value is not a map), -1 with an exception set. */
static long read_map(MMDB_entry_data_list_s **cursor, const Node *node, const Language *filter, PyObject **slots) {
    long size = enter_map(cursor);
    for (long i = 0; size > 0 && i < size; i++) {
        const MMDB_entry_data_s *key = next_key(cursor);
        if (key == NULL) {
            return -1;
        }
        const Node *child = child_for((Node *)node, key->utf8_string, key->data_size, 0, 0);
        if (!(child == NULL ? skip(cursor) : read_value(cursor, child, filter, slots))) {
            return -1;
        }
    }
    return size;
}

/* The table's values for the value at *cursor, as a tuple (absent values None, "present" False). */
static PyObject *read_table(MMDB_entry_data_list_s **cursor, const Table *table, const Language *filter) {
    PyObject *small[32] = {NULL};
    PyObject **slots = table->count <= 32 ? small : PyMem_Calloc((size_t)table->count, sizeof(PyObject *));
    if (slots == NULL) {
        return PyErr_NoMemory();
    }
    int ok = read_map(cursor, &table->root, filter, slots) >= 0;
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
    Py_ssize_t length;
    Language filter;
    filter.language = PyUnicode_AsUTF8AndSize(args[1], &length);
    if (filter.language == NULL) {
        return NULL;
    }
    filter.language_length = (size_t)length;
    MMDB_entry_data_list_s *list = entry_list_at(self, args[0]);
    if (list == NULL) {
        return NULL;
    }
    MMDB_entry_data_list_s *cursor = list;
    PyObject *result = read_table(&cursor, self->table, &filter);
    MMDB_free_entry_data_list(list);
    return result;
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

static PyTypeObject OffsetReaderType = {
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
    if (PyModule_AddStringConstant(m, "libmaxminddb_version", MMDB_lib_version()) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
