/* portscan._tarscan: a plain tar header read in C, as Python's tarfile reads it.
 *
 * layers.py walks some 7,000 tar headers for nginx and 100,000 for a node_modules
 * layer; tarfile spends about 17 us on each (field by field in Python, and two sums
 * over 512 bytes for the checksum). `header` reads the common case in about one: a
 * ustar or GNU header of a file, link, directory or device whose numbers are plain
 * octal. Anything else (an end-of-archive block, a bad checksum, a pax or GNU long-name
 * header, a sparse file, a base-256 or unusual number) returns None, and layers.py
 * lets tarfile read that header, so every refusal and every exotic format stays
 * tarfile's. tests/test_tarscan.py holds the two equal on real layers and on mutated
 * headers.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#define BLOCK 512

/* tarfile's nti() for a field without a base-256 marker, when the field is spaces,
 * octal digits and spaces up to its first NUL (or its end); 0 for anything else,
 * which tarfile then reads (or refuses) itself. An empty field is 0, as tarfile says. */
static int
octal(const unsigned char *p, Py_ssize_t n, long long *out)
{
    Py_ssize_t end = 0, i = 0;
    long long value = 0;
    if (p[0] == 0x80 || p[0] == 0xff)
        return 0;
    while (end < n && p[end])
        end++;
    while (i < end && p[i] == ' ')
        i++;
    while (i < end && p[i] >= '0' && p[i] <= '7') {
        if (value > (1LL << 56))
            return 0;
        value = value * 8 + (p[i] - '0');
        i++;
    }
    while (i < end && p[i] == ' ')
        i++;
    if (i != end)
        return 0;
    *out = value;
    return 1;
}

/* The length of a NUL-terminated field (tarfile's nts()). */
static Py_ssize_t
text_length(const unsigned char *p, Py_ssize_t n)
{
    const unsigned char *nul = memchr(p, 0, (size_t)n);
    return nul ? (Py_ssize_t)(nul - p) : n;
}

static PyObject *
decoded(const unsigned char *p, Py_ssize_t n)
{
    return PyUnicode_DecodeUTF8((const char *)p, n, "surrogateescape");
}

static PyObject *
header(PyObject *self, PyObject *arg)
{
    Py_buffer view;
    const unsigned char *b;
    long long chksum, mode, uid, gid, size, mtime, devmajor, devminor;
    long unsigned_sum = 256, signed_sum = 256;
    Py_ssize_t i, name_len, link_len, prefix_len;
    unsigned char type;
    PyObject *name = NULL, *linkname = NULL, *result = NULL;

    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    if (view.len != BLOCK)
        goto plain_none;
    b = (const unsigned char *)view.buf;
    for (i = 0; i < BLOCK; i++) {
        if (i >= 148 && i < 156)
            continue;
        unsigned_sum += b[i];
        signed_sum += (signed char)b[i];
    }
    /* (a block of zeros, the end of the archive, fails here: its checksum field is 0) */
    if (!octal(b + 148, 8, &chksum) || (chksum != unsigned_sum && chksum != signed_sum))
        goto plain_none;
    type = b[156];
    if (!(type == 0 || (type >= '0' && type <= '7')))
        goto plain_none; /* pax, GNU long names, sparse, vendor types: tarfile's */
    if (!octal(b + 100, 8, &mode) || !octal(b + 108, 8, &uid) || !octal(b + 116, 8, &gid) ||
        !octal(b + 124, 12, &size) || !octal(b + 136, 12, &mtime) ||
        !octal(b + 329, 8, &devmajor) || !octal(b + 337, 8, &devminor))
        goto plain_none;
    name_len = text_length(b, 100);
    link_len = text_length(b + 157, 100);
    prefix_len = text_length(b + 345, 155);
    if (type == 0 && name_len && b[name_len - 1] == '/')
        type = '5'; /* the old V7 way of saying directory */
    if (type == '5')
        while (name_len && b[name_len - 1] == '/')
            name_len--;
    name = decoded(b, name_len);
    if (name == NULL)
        goto done;
    if (prefix_len) {
        PyObject *prefix = decoded(b + 345, prefix_len);
        PyObject *joined = prefix ? PyUnicode_FromFormat("%U/%U", prefix, name) : NULL;
        Py_XDECREF(prefix);
        Py_SETREF(name, joined);
        if (name == NULL)
            goto done;
        if (type == '5') { /* tarfile strips a directory's slashes again once joined */
            Py_ssize_t length = PyUnicode_GET_LENGTH(name);
            while (length && PyUnicode_READ_CHAR(name, length - 1) == '/')
                length--;
            Py_SETREF(name, PyUnicode_Substring(name, 0, length));
            if (name == NULL)
                goto done;
        }
    }
    linkname = decoded(b + 157, link_len);
    if (linkname == NULL)
        goto done;
    result = Py_BuildValue("(OOy#LLLL)", name, linkname, (const char *)&type, (Py_ssize_t)1,
                           mode, uid, gid, size);
    goto done;
plain_none:
    result = Py_NewRef(Py_None);
done:
    Py_XDECREF(name);
    Py_XDECREF(linkname);
    PyBuffer_Release(&view);
    return result;
}

static PyMethodDef methods[] = {
    {"header", header, METH_O,
     "header(block) -> (name, linkname, type, mode, uid, gid, size) of a plain 512-byte "
     "tar header, as tarfile reads it, or None for any other block (tarfile's to read)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_tarscan", "Plain tar headers read in C (layers.py).", -1, methods,
};

PyMODINIT_FUNC
PyInit__tarscan(void)
{
    return PyModule_Create(&module);
}
