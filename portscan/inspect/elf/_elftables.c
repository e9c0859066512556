/* ELF tables read in C: the loops over symbol tables and relocations that run for
   every ELF file, or every library walked, of an image. Each does exactly what the
   Python it stands for does (that Python stays, for an install without a compiler);
   the tests hold the two equal.

   dynamic_symbols(raw, wide, versym, versions, table, text, typed, anywhere,
                   imported_names) -> (imported, exported)
       The direct reader's .dynsym loop (inspect/elf/direct.py,
       `_Reader._dynamic_symbols`; tests/test_direct_reader.py).
       raw:            the symbol table's entries, Elf64_Sym (`wide`) or Elf32_Sym,
                       little endian
       versym:         DT_VERSYM's 16-bit little-endian entries, one a symbol, or None
                       (no symbol has a version)
       versions:       dict version index -> name (each index with the hidden bit and
                       without)
       table:          the dynamic string table as text when it is ASCII, else None
       text:           text(offset) -> the name at `offset` of the table, by the
                       reader's own rules: asked for every name `table` cannot answer
                       (no NUL after it)
       typed:          256 bytes, st_info -> whether such a symbol may be imported or
                       exported
       anywhere:       whether an import may have an address (some machines' imports do)
       imported_names: dict filled with .dynsym index -> name of each import
       imported, exported: sets of `name@VERSION` (or the bare name).

   graph_symbols(raw, strings, dynamic, code, found, objects, names, sizes, exports,
                 locals) -> None
       A call graph's reading of one symbol table (inspect/elf/callgraph.py,
       `CallGraph._read_symbols`; tests/test_callgraph.py): Elf64_Sym entries `raw`,
       names in `strings`; `code` the executable sections' (start, end) as 64-bit
       words, sorted; `found` (.dynsym: `dynamic`) gets each entry, `objects` each
       sized data object, `names`, `sizes`, `exports` and `locals` each function.

   in_code(addresses, code) -> list
       The addresses (ints) that are in `code`, in order (`CallGraph._in_code`).

   graph_relocations(raw, kinds, dynamic, code, pointers, got, taken) -> None
       A call graph's reading of one SHT_RELA section (`CallGraph._read_relocations`):
       `kinds` (relative, irelative, abs64, glob_dat, jump_slot), `dynamic` the .dynsym
       entries `graph_symbols` made; fills `pointers`, `got` and the set `taken`.

   x86_branches(data, start, end, stop, to_address, targets, tails) -> list
       The syscall scanner's direct calls and jumps to its targets from one block of
       x86-64 code (inspect/elf/syscalls.py, `_x86_branches`; tests/test_elf_fast_paths.py):
       the search of data[start:stop) for a call or jump rel32 opcode, two bytes and
       one of `tails` (2-byte bytes), its matches not overlapping, as (offset, target)
       for each match that starts before `end` and whose target (offset + to_address
       + 5 + rel32) is one of `targets` (ints). */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
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
dynamic_symbols(PyObject *module, PyObject *args)
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

/* Whether `address` is in one of the `count` (start, end) pairs of `code`, sorted by
   start: the last pair starting at or below it ends above it (CallGraph._in_code). */
static int
in_code(const uint64_t *code, Py_ssize_t count, uint64_t address)
{
    Py_ssize_t low = 0, high = count; /* bisect_right over the starts */
    while (low < high) {
        Py_ssize_t middle = (low + high) / 2;
        if (address < code[2 * middle])
            high = middle;
        else
            low = middle + 1;
    }
    return low > 0 && address < code[2 * (low - 1) + 1];
}

/* in_code of a Python int: a negative or too large one is in no code. -1: error. */
static int
int_in_code(const uint64_t *code, Py_ssize_t count, PyObject *value)
{
    int overflow = 0;
    long long small = PyLong_AsLongLongAndOverflow(value, &overflow);
    if (small == -1 && PyErr_Occurred())
        return -1;
    if (overflow < 0 || (!overflow && small < 0))
        return 0;
    if (overflow > 0) {
        unsigned long long big = PyLong_AsUnsignedLongLong(value);
        if (big == (unsigned long long)-1 && PyErr_Occurred()) {
            PyErr_Clear(); /* past 64 bits */
            return 0;
        }
        return in_code(code, count, big);
    }
    return in_code(code, count, (uint64_t)small);
}

/* `a + b` of two 64-bit values as Python adds them (beyond 64 bits if need be). */
static PyObject *
sum_of(uint64_t a, uint64_t b)
{
    if (a + b >= a)
        return PyLong_FromUnsignedLongLong(a + b);
    PyObject *x = PyLong_FromUnsignedLongLong(a), *y = PyLong_FromUnsignedLongLong(b);
    PyObject *sum = x && y ? PyNumber_Add(x, y) : NULL;
    Py_XDECREF(x);
    Py_XDECREF(y);
    return sum;
}

static int
code_table(Py_buffer *code, Py_ssize_t *count)
{
    if (code->len % 16) {
        PyErr_SetString(PyExc_ValueError, "code holds (start, end) pairs of 64-bit words");
        return -1;
    }
    *count = code->len / 16;
    return 0;
}

/* d.setdefault(key, value) that steals neither. 0, or -1 with an exception. */
static int
set_default(PyObject *d, PyObject *key, PyObject *value)
{
    PyObject *found = PyDict_SetDefault(d, key, value);
    return found == NULL ? -1 : 0;
}

static int
one_function(PyObject *name, PyObject *start, uint64_t size, int dynamic, unsigned bind,
             PyObject *names, PyObject *sizes, PyObject *exports, PyObject *locals)
{
    PyObject *list = PyDict_GetItemWithError(names, start);
    if (list == NULL) {
        if (PyErr_Occurred())
            return -1;
        list = PyList_New(0);
        if (list == NULL || PyDict_SetItem(names, start, list) < 0) {
            Py_XDECREF(list);
            return -1;
        }
        Py_DECREF(list); /* the dict holds it */
    }
    if (!PyList_Check(list)) {
        PyErr_SetString(PyExc_TypeError, "names holds lists");
        return -1;
    }
    int there = PySequence_Contains(list, name);
    if (there < 0 || (!there && PyList_Append(list, name) < 0))
        return -1;
    if (size) {
        PyObject *had = PyDict_GetItemWithError(sizes, start);
        if (had == NULL && PyErr_Occurred())
            return -1;
        PyObject *mine = PyLong_FromUnsignedLongLong(size);
        if (mine == NULL)
            return -1;
        int larger = had == NULL ? 1 : PyObject_RichCompareBool(mine, had, Py_GT);
        int failed = larger < 0 || (larger && PyDict_SetItem(sizes, start, mine) < 0);
        Py_DECREF(mine);
        if (failed)
            return -1;
    }
    return set_default(dynamic && bind != 0 ? exports : locals, name, start);
}

static PyObject *
graph_symbols(PyObject *module, PyObject *args)
{
    Py_buffer raw, strings, code;
    int dynamic;
    PyObject *found, *objects, *names, *sizes, *exports, *locals;
    if (!PyArg_ParseTuple(args, "y*y*py*O!O!O!O!O!O!", &raw, &strings, &dynamic, &code,
                          &PyList_Type, &found, &PyList_Type, &objects, &PyDict_Type, &names,
                          &PyDict_Type, &sizes, &PyDict_Type, &exports, &PyDict_Type, &locals))
        return NULL;
    PyObject *result = NULL;
    Py_ssize_t count;
    if (raw.len % 24) {
        PyErr_SetString(PyExc_ValueError, "raw holds whole Elf64_Sym entries");
        goto done;
    }
    if (code_table(&code, &count) < 0)
        goto done;
    const uint64_t *ranges = code.buf;
    const unsigned char *entries = raw.buf;
    const char *text = strings.buf;
    for (Py_ssize_t index = 0; index < raw.len / 24; index++) {
        const unsigned char *entry = entries + index * 24;
        uint32_t name_at = u32(entry);
        unsigned kind = entry[4] & 0xF, bind = entry[4] >> 4;
        int defined = (entry[6] | entry[7] << 8) != 0;
        uint64_t value = u64(entry + 8), size = u64(entry + 16);
        PyObject *name;
        const char *end = (Py_ssize_t)name_at < strings.len
                              ? memchr(text + name_at, '\0', (size_t)(strings.len - name_at))
                              : NULL;
        if (end != NULL && end > text + name_at)
            name = PyUnicode_DecodeUTF8(text + name_at, end - (text + name_at), "replace");
        else
            name = PyUnicode_FromStringAndSize("", 0);
        PyObject *start = name ? PyLong_FromUnsignedLongLong(value) : NULL;
        int failed = start == NULL;
        if (!failed && dynamic) {
            PyObject *row = Py_BuildValue("(OIOO)", name, kind, start, defined ? Py_True : Py_False);
            failed = row == NULL || PyList_Append(found, row) < 0;
            Py_XDECREF(row);
        }
        if (!failed && !(dynamic && index == 0)) {
            if (defined && kind == 1 && value && size) { /* STT_OBJECT */
                PyObject *after = sum_of(value, size);
                PyObject *span = after ? PyTuple_Pack(2, start, after) : NULL;
                failed = span == NULL || PyList_Append(objects, span) < 0;
                Py_XDECREF(after);
                Py_XDECREF(span);
            }
            int function = defined && (kind == 2 || kind == 10) && value; /* FUNC, IFUNC */
            if (!failed && function && PyUnicode_GET_LENGTH(name) && in_code(ranges, count, value))
                failed = one_function(name, start, size, dynamic, bind, names, sizes, exports,
                                      locals) < 0;
        }
        Py_XDECREF(name);
        Py_XDECREF(start);
        if (failed)
            goto done;
    }
    result = Py_NewRef(Py_None);
done:
    PyBuffer_Release(&raw);
    PyBuffer_Release(&strings);
    PyBuffer_Release(&code);
    return result;
}

static PyObject *
graph_relocations(PyObject *module, PyObject *args)
{
    Py_buffer raw, code;
    long long relative, irelative, abs64, glob_dat, jump_slot;
    PyObject *dynamic, *pointers, *got, *taken;
    if (!PyArg_ParseTuple(args, "y*(LLLLL)O!y*O!O!O!", &raw, &relative, &irelative, &abs64,
                          &glob_dat, &jump_slot, &PyList_Type, &dynamic, &code, &PyDict_Type,
                          &pointers, &PyDict_Type, &got, &PySet_Type, &taken))
        return NULL;
    PyObject *result = NULL;
    Py_ssize_t count;
    if (raw.len % 24) {
        PyErr_SetString(PyExc_ValueError, "raw holds whole Elf64_Rela entries");
        goto done;
    }
    if (code_table(&code, &count) < 0)
        goto done;
    const uint64_t *ranges = code.buf;
    const unsigned char *entries = raw.buf;
    for (Py_ssize_t at = 0; at < raw.len; at += 24) {
        uint64_t info = u64(entries + at + 8);
        long long kind = (long long)(info & 0xFFFFFFFF);
        uint64_t index = info >> 32;
        int64_t addend = (int64_t)u64(entries + at + 16);
        int symbolic = kind == abs64 || kind == glob_dat || kind == jump_slot;
        if (kind != relative && kind != irelative
            && (!symbolic || index == 0 || index >= (uint64_t)PyList_GET_SIZE(dynamic)))
            continue;
        PyObject *offset = PyLong_FromUnsignedLongLong(u64(entries + at));
        if (offset == NULL)
            goto done;
        int failed = 0;
        if (kind == relative || kind == irelative) {
            PyObject *pointer = PyLong_FromLongLong(addend);
            failed = pointer == NULL || PyDict_SetItem(pointers, offset, pointer) < 0;
            if (!failed && addend >= 0 && in_code(ranges, count, (uint64_t)addend))
                failed = PyDict_SetItem(got, offset, pointer) < 0 || PySet_Add(taken, pointer) < 0;
            Py_XDECREF(pointer);
            Py_DECREF(offset);
            if (failed)
                goto done;
            continue;
        }
        PyObject *row = PyList_GET_ITEM(dynamic, (Py_ssize_t)index);
        if (!PyTuple_Check(row) || PyTuple_GET_SIZE(row) != 4) {
            PyErr_SetString(PyExc_TypeError, "a .dynsym entry is (name, type, value, defined)");
            Py_DECREF(offset);
            goto done;
        }
        PyObject *name = PyTuple_GET_ITEM(row, 0), *value = PyTuple_GET_ITEM(row, 2);
        long sym_type = PyLong_AsLong(PyTuple_GET_ITEM(row, 1));
        int defined = PyObject_IsTrue(PyTuple_GET_ITEM(row, 3));
        int named = PyObject_IsTrue(name);
        if ((sym_type == -1 && PyErr_Occurred()) || defined < 0 || named < 0) {
            Py_DECREF(offset);
            goto done;
        }
        PyObject *target = NULL; /* value + (addend if kind == abs64 else 0) */
        if (kind == abs64) {
            PyObject *more = PyLong_FromLongLong(addend);
            target = more ? PyNumber_Add(value, more) : NULL;
            Py_XDECREF(more);
        } else {
            target = Py_NewRef(value);
        }
        failed = target == NULL;
        if (!failed && defined && kind != jump_slot)
            failed = PyDict_SetItem(pointers, offset, target) < 0;
        else if (!failed && named && kind != jump_slot && (sym_type == 2 || sym_type == 0))
            failed = PyDict_SetItem(pointers, offset, name) < 0;
        if (!failed && defined) {
            if (sym_type == 2 || sym_type == 10) { /* FUNC, IFUNC */
                int inside = int_in_code(ranges, count, value);
                failed = inside < 0;
                if (!failed && inside) {
                    failed = PyDict_SetItem(got, offset, target) < 0;
                    if (!failed && kind != jump_slot)
                        failed = PySet_Add(taken, target) < 0;
                }
            }
        } else if (!failed && (sym_type == 2 || sym_type == 0) && named) {
            failed = PyDict_SetItem(got, offset, name) < 0;
        }
        Py_XDECREF(target);
        Py_DECREF(offset);
        if (failed)
            goto done;
    }
    result = Py_NewRef(Py_None);
done:
    PyBuffer_Release(&raw);
    PyBuffer_Release(&code);
    return result;
}

static PyObject *
in_code_of(PyObject *module, PyObject *args)
{
    PyObject *addresses;
    Py_buffer code;
    if (!PyArg_ParseTuple(args, "Oy*", &addresses, &code))
        return NULL;
    PyObject *result = NULL, *items = NULL;
    Py_ssize_t count;
    if (code_table(&code, &count) < 0)
        goto done;
    items = PySequence_Fast(addresses, "addresses is a sequence");
    result = items ? PyList_New(0) : NULL;
    for (Py_ssize_t i = 0; result != NULL && i < PySequence_Fast_GET_SIZE(items); i++) {
        PyObject *address = PySequence_Fast_GET_ITEM(items, i);
        if (!PyLong_Check(address)) {
            PyErr_SetString(PyExc_TypeError, "an address is an int");
            Py_CLEAR(result);
            break;
        }
        int inside = int_in_code(code.buf, count, address);
        if (inside < 0 || (inside && PyList_Append(result, address) < 0))
            Py_CLEAR(result);
    }
done:
    Py_XDECREF(items);
    PyBuffer_Release(&code);
    return result;
}

static int
compare_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static PyObject *
x86_branches(PyObject *module, PyObject *args)
{
    Py_buffer data;
    Py_ssize_t start, end, stop;
    long long to_address;
    PyObject *targets, *tails;
    if (!PyArg_ParseTuple(args, "y*nnnLOO", &data, &start, &end, &stop, &to_address, &targets,
                          &tails))
        return NULL;
    PyObject *result = NULL, *iterator = NULL, *item = NULL;
    int64_t *wanted = NULL;
    Py_ssize_t count = 0;
    unsigned char seen[1 << 13] = {0}; /* a bit per 2-byte tail, little endian */
    if (start < 0 || stop > data.len || end > stop) {
        PyErr_SetString(PyExc_ValueError, "the block is outside the data");
        goto done;
    }
    iterator = PyObject_GetIter(tails);
    while (iterator != NULL && (item = PyIter_Next(iterator)) != NULL) {
        if (!PyBytes_Check(item) || PyBytes_GET_SIZE(item) != 2) {
            PyErr_SetString(PyExc_TypeError, "a tail is 2 bytes");
            goto done;
        }
        const unsigned char *tail = (const unsigned char *)PyBytes_AS_STRING(item);
        unsigned bit = (unsigned)tail[0] | (unsigned)tail[1] << 8;
        seen[bit >> 3] |= (unsigned char)(1u << (bit & 7));
        Py_CLEAR(item);
    }
    Py_CLEAR(iterator);
    if (PyErr_Occurred())
        goto done;
    Py_ssize_t size = PyObject_Length(targets);
    wanted = size < 0 ? NULL : PyMem_Malloc((size_t)(size ? size : 1) * sizeof(int64_t));
    if (wanted == NULL) {
        if (!PyErr_Occurred())
            PyErr_NoMemory();
        goto done;
    }
    iterator = PyObject_GetIter(targets);
    while (iterator != NULL && (item = PyIter_Next(iterator)) != NULL) {
        int overflow = 0;
        long long target = PyLong_Check(item) ? PyLong_AsLongLongAndOverflow(item, &overflow) : -1;
        if (!PyLong_Check(item) || PyErr_Occurred()) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_TypeError, "a target is an int");
            goto done;
        }
        Py_CLEAR(item);
        if (overflow || count == size) /* no rel32 reaches past 64 bits */
            continue;
        wanted[count++] = target;
    }
    Py_CLEAR(iterator);
    if (PyErr_Occurred())
        goto done;
    qsort(wanted, (size_t)count, sizeof(int64_t), compare_i64);
    result = PyList_New(0);
    const unsigned char *bytes = data.buf;
    for (Py_ssize_t at = start; result != NULL && at < end && at + 5 <= stop;) {
        unsigned tail = (unsigned)bytes[at + 3] | (unsigned)bytes[at + 4] << 8;
        if ((bytes[at] & 0xFE) != 0xE8 || !(seen[tail >> 3] & (1u << (tail & 7)))) {
            at++;
            continue;
        }
        int64_t target = (int64_t)at + to_address + 5 + (int32_t)u32(bytes + at + 1);
        if (bsearch(&target, wanted, (size_t)count, sizeof(int64_t), compare_i64) != NULL) {
            PyObject *found = Py_BuildValue("(nL)", at, (long long)target);
            if (found == NULL || PyList_Append(result, found) < 0)
                Py_CLEAR(result);
            Py_XDECREF(found);
        }
        at += 5; /* the search goes on after its match */
    }
done:
    Py_XDECREF(item);
    Py_XDECREF(iterator);
    PyMem_Free(wanted);
    PyBuffer_Release(&data);
    return result;
}

static PyMethodDef methods[] = {
    {"dynamic_symbols", dynamic_symbols, METH_VARARGS,
     "dynamic_symbols(raw, wide, versym, versions, table, text, typed, anywhere,"
     " imported_names) -> (imported, exported): the symbols lief calls imported and exported."},
    {"graph_symbols", graph_symbols, METH_VARARGS,
     "graph_symbols(raw, strings, dynamic, code, found, objects, names, sizes, exports,"
     " locals): a call graph's reading of one symbol table."},
    {"graph_relocations", graph_relocations, METH_VARARGS,
     "graph_relocations(raw, kinds, dynamic, code, pointers, got, taken): a call graph's"
     " reading of one SHT_RELA section."},
    {"in_code", in_code_of, METH_VARARGS,
     "in_code(addresses, code) -> the addresses in code, in order (CallGraph._in_code)."},
    {"x86_branches", x86_branches, METH_VARARGS,
     "x86_branches(data, start, end, stop, to_address, targets, tails) -> [(offset, target)]:"
     " the syscall scanner's branches to its targets from one block of x86-64 code."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_elftables", "ELF tables read in C (symbols, relocations).", -1,
    methods,
};

PyMODINIT_FUNC
PyInit__elftables(void)
{
    return PyModule_Create(&module);
}
