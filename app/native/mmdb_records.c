/* mmdb_records: a MaxMind DB record's offset without decoding it, and a record decoded at an
 * offset with its names in one language.
 *
 * Why this exists (docs/architecture.md, "Record cache"): many networks share one record, and the
 * maxminddb extension decodes the whole record (every name in every language) on each lookup.
 * The City adapter keeps what it derives from a record per offset, so it needs the offset first,
 * and on a miss it needs the record without a second walk down the tree. libmaxminddb (the
 * system's, linked here) does the tree walk and all reading of the file, with its own bounds
 * checks; this module only turns libmaxminddb's entry list into Python objects.
 *
 * Decoded values are what the maxminddb extension gives for the same record (dict, list, str,
 * int, float, bool, bytes), except that a map under a "names" key keeps only the asked language
 * and English when a language is given. `open_offset_reader` (app/record_offsets.py) checks the
 * answers against the extension's before the service relies on them.
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
} OffsetReader;

static PyObject *DecodeError;

static int OffsetReader_init(OffsetReader *self, PyObject *args, PyObject *kwds) {
    PyObject *path = NULL;
    static char *keywords[] = {"path", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O&", keywords, PyUnicode_FSConverter, &path)) {
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
    return 0;
}

static void OffsetReader_dealloc(OffsetReader *self) {
    if (self->open) {
        MMDB_close(&self->mmdb);
        self->open = 0;
    }
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int check_open(OffsetReader *self) {
    if (!self->open) {
        PyErr_SetString(PyExc_ValueError, "the database is closed");
        return 0;
    }
    return 1;
}

/* locate(address: int, version: int) -> (offset or None, prefix length) */
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
    if (!result.found_entry) {
        return Py_BuildValue("(Oi)", Py_None, prefix);
    }
    return Py_BuildValue("(ki)", (unsigned long)result.entry.offset, prefix);
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

/* `language` NULL: every name. Otherwise a map under a "names" key keeps `language` and "en". */
typedef struct {
    const char *language;
    size_t language_length;
} NameFilter;

static int keep_name(const NameFilter *filter, const char *key, uint32_t length) {
    return (length == filter->language_length && memcmp(key, filter->language, length) == 0) ||
           (length == 2 && memcmp(key, "en", 2) == 0);
}

static PyObject *decode_value(MMDB_entry_data_list_s **cursor, const NameFilter *filter, int is_names);

static PyObject *decode_map(MMDB_entry_data_list_s **cursor, uint32_t size, const NameFilter *filter,
                            int is_names) {
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
        const char *key_text = key_node->entry_data.utf8_string;
        uint32_t key_length = key_node->entry_data.data_size;
        if (is_names && filter->language != NULL && !keep_name(filter, key_text, key_length)) {
            if (!skip_value(cursor)) {
                Py_DECREF(map);
                return truncated();
            }
            continue;
        }
        PyObject *key = PyUnicode_DecodeUTF8(key_text, key_length, NULL);
        if (key == NULL) {
            Py_DECREF(map);
            return NULL;
        }
        int child_is_names = key_length == 5 && memcmp(key_text, "names", 5) == 0;
        PyObject *value = decode_value(cursor, filter, child_is_names);
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

static PyObject *decode_value(MMDB_entry_data_list_s **cursor, const NameFilter *filter, int is_names) {
    MMDB_entry_data_list_s *node = *cursor;
    if (node == NULL) {
        return truncated();
    }
    *cursor = node->next;
    const MMDB_entry_data_s *data = &node->entry_data;
    switch (data->type) {
    case MMDB_DATA_TYPE_MAP:
        return decode_map(cursor, data->data_size, filter, is_names);
    case MMDB_DATA_TYPE_ARRAY: {
        PyObject *list = PyList_New(data->data_size);
        if (list == NULL) {
            return NULL;
        }
        for (uint32_t i = 0; i < data->data_size; i++) {
            PyObject *item = decode_value(cursor, filter, 0);
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

/* read(offset: int, language: str | None) -> the record at that data-section offset */
static PyObject *OffsetReader_read(OffsetReader *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "read(offset, language) takes 2 arguments");
        return NULL;
    }
    if (!check_open(self)) {
        return NULL;
    }
    unsigned long offset = PyLong_AsUnsignedLong(args[0]);
    if (offset == (unsigned long)-1 && PyErr_Occurred()) {
        return NULL;
    }
    if (offset > UINT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "offset out of range");
        return NULL;
    }
    NameFilter filter = {NULL, 0};
    if (args[1] != Py_None) {
        Py_ssize_t length;
        filter.language = PyUnicode_AsUTF8AndSize(args[1], &length);
        if (filter.language == NULL) {
            return NULL;
        }
        filter.language_length = (size_t)length;
    }
    MMDB_entry_s entry = {.mmdb = &self->mmdb, .offset = (uint32_t)offset};
    MMDB_entry_data_list_s *list = NULL;
    int status = MMDB_get_entry_data_list(&entry, &list);
    if (status != MMDB_SUCCESS) {
        MMDB_free_entry_data_list(list);
        PyErr_Format(DecodeError, "cannot decode the record: %s", MMDB_strerror(status));
        return NULL;
    }
    MMDB_entry_data_list_s *cursor = list;
    PyObject *record = decode_value(&cursor, &filter, 0);
    MMDB_free_entry_data_list(list);
    return record;
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
     "locate(address: int, version: int) -> (offset or None, prefix length)"},
    {"read", (PyCFunction)(void (*)(void))OffsetReader_read, METH_FASTCALL,
     "read(offset: int, language: str | None) -> the record at offset"},
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
    .tp_doc = "OffsetReader(path): record offsets and records at offsets in one MaxMind DB file",
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
