/* The loop over .dynsym of the direct ELF reader (inspect/elf/direct.py,
   `_Reader._dynamic_symbols`), in C.

   symbols(raw, wide, versym, versions, table, text, typed, anywhere, imported_names)
       -> (imported, exported)

   raw:            the symbol table's entries, Elf64_Sym (`wide`) or Elf32_Sym, little
                   endian
   versym:         DT_VERSYM's 16-bit little-endian entries, one a symbol, or None (no
                   symbol has a version)
   versions:       dict version index -> name (each index with the hidden bit and without)
   table:          the dynamic string table as text when it is ASCII, else None
   text:           text(offset) -> the name at `offset` of the table, by the reader's own
                   rules: asked for every name `table` cannot answer (no NUL after it)
   typed:          256 bytes, st_info -> whether such a symbol may be imported or exported
   anywhere:       whether an import may have an address (some machines' imports do)
   imported_names: dict filled with .dynsym index -> name of each import

   imported, exported: sets of `name@VERSION` (or the bare name). Exactly what the Python
   of `_dynamic_symbols` makes; tests/test_elf_direct.py checks the two agree. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

static uint32_t
u32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t
u64(const unsigned char *p)
{
    return (uint64_t)u32(p) | (uint64_t)u32(p + 4) << 32;
}

/* The name at `at`: from `table` up to its next NUL, else text(at). New reference. */
static PyObject *
name_at(PyObject *table, const char *chars, Py_ssize_t length, PyObject *text, uint32_t at)
{
    if (chars != NULL && (Py_ssize_t)at < length) {
        const char *end = memchr(chars + at, '\0', (size_t)(length - (Py_ssize_t)at));
        if (end != NULL)
            return PyUnicode_Substring(table, (Py_ssize_t)at, end - chars);
    }
    PyObject *offset = PyLong_FromUnsignedLong(at);
    if (offset == NULL)
        return NULL;
    PyObject *found = PyObject_CallOneArg(text, offset);
    Py_DECREF(offset);
    if (found != NULL && !PyUnicode_Check(found)) {
        PyErr_SetString(PyExc_TypeError, "text() gives a str");
        Py_DECREF(found);
        return NULL;
    }
    return found;
}

/* `name@version`, or `name` itself for an empty version. New reference. */
static PyObject *
spelled(PyObject *name, PyObject *version)
{
    if (version == NULL || PyUnicode_GET_LENGTH(version) == 0) {
        Py_INCREF(name);
        return name;
    }
    return PyUnicode_FromFormat("%U@%U", name, version);
}

static PyObject *
symbols(PyObject *module, PyObject *args)
{
    Py_buffer raw, typed;
    int wide, anywhere;
    PyObject *versym, *versions, *table, *text, *imported_names;
    if (!PyArg_ParseTuple(args, "y*pOO!OOy*pO!", &raw, &wide, &versym, &PyDict_Type, &versions,
                          &table, &text, &typed, &anywhere, &PyDict_Type, &imported_names))
        return NULL;
    PyObject *result = NULL, *imported = NULL, *exported = NULL;
    Py_buffer versym_view = {0};
    const char *chars = NULL;
    Py_ssize_t length = 0;
    if (typed.len != 256) {
        PyErr_SetString(PyExc_ValueError, "typed holds one byte per st_info value");
        goto done;
    }
    if (table != Py_None) {
        if (!PyUnicode_Check(table) || !PyUnicode_IS_ASCII(table)) {
            PyErr_SetString(PyExc_TypeError, "table is an ASCII str or None");
            goto done;
        }
        chars = (const char *)PyUnicode_DATA(table);
        length = PyUnicode_GET_LENGTH(table);
    }
    if (versym != Py_None && PyObject_GetBuffer(versym, &versym_view, PyBUF_SIMPLE) < 0)
        goto done;
    imported = PySet_New(NULL);
    exported = PySet_New(NULL);
    if (imported == NULL || exported == NULL)
        goto done;
    const Py_ssize_t size = wide ? 24 : 16;
    Py_ssize_t count = raw.len / size;
    if (versym != Py_None && versym_view.len / 2 < count)
        count = versym_view.len / 2; /* as zip() stops at the shorter */
    const unsigned char *entries = raw.buf, *tags = typed.buf;
    const unsigned char *indexes = versym != Py_None ? versym_view.buf : NULL;
    for (Py_ssize_t index = 0; index < count; index++) {
        const unsigned char *entry = entries + index * size;
        uint32_t name_offset = u32(entry);
        unsigned info;
        unsigned shndx;
        uint64_t value, extent;
        if (wide) {
            info = entry[4];
            shndx = entry[6] | entry[7] << 8;
            value = u64(entry + 8);
            extent = u64(entry + 16);
        } else {
            value = u32(entry + 4);
            extent = u32(entry + 8);
            info = entry[12];
            shndx = entry[14] | entry[15] << 8;
        }
        if (!tags[info] || !name_offset)
            continue; /* neither imported nor exported, or without a name */
        PyObject *name = name_at(table, chars, length, text, name_offset);
        if (name == NULL)
            goto done;
        int import = shndx == 0;
        if (PyUnicode_GET_LENGTH(name) == 0
            || (import ? !(anywhere || value == 0) : !(value != 0 || extent > 0))) {
            Py_DECREF(name);
            continue;
        }
        PyObject *version = NULL; /* borrowed */
        if (indexes != NULL) {
            PyObject *key = PyLong_FromLong(indexes[2 * index] | indexes[2 * index + 1] << 8);
            if (key == NULL) {
                Py_DECREF(name);
                goto done;
            }
            version = PyDict_GetItemWithError(versions, key);
            Py_DECREF(key);
            if (version == NULL && PyErr_Occurred()) {
                Py_DECREF(name);
                goto done;
            }
            if (version != NULL && !PyUnicode_Check(version)) {
                PyErr_SetString(PyExc_TypeError, "a version is a str");
                Py_DECREF(name);
                goto done;
            }
        }
        PyObject *symbol = spelled(name, version);
        int failed = symbol == NULL || PySet_Add(import ? imported : exported, symbol) < 0;
        Py_XDECREF(symbol);
        if (!failed && import) {
            PyObject *key = PyLong_FromSsize_t(index);
            failed = key == NULL || PyDict_SetItem(imported_names, key, name) < 0;
            Py_XDECREF(key);
        }
        Py_DECREF(name);
        if (failed)
            goto done;
    }
    result = PyTuple_Pack(2, imported, exported);
done:
    Py_XDECREF(imported);
    Py_XDECREF(exported);
    if (versym_view.obj != NULL)
        PyBuffer_Release(&versym_view);
    PyBuffer_Release(&raw);
    PyBuffer_Release(&typed);
    return result;
}

static PyMethodDef methods[] = {
    {"symbols", symbols, METH_VARARGS,
     "symbols(raw, wide, versym, versions, table, text, typed, anywhere, imported_names)"
     " -> (imported, exported): the dynamic symbols lief calls imported and exported."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_dynsym", "The direct ELF reader's .dynsym loop, in C.", -1, methods,
};

PyMODINIT_FUNC
PyInit__dynsym(void)
{
    return PyModule_Create(&module);
}
