/* Sorts capstone's x86-64 decoding for the call-graph walker (callgraph._X86Walker).
 *
 * The walker looks at a few instructions of a function (calls, branches out of it, what
 * refers to rip, indirect branches); most only clear its "register just loaded" state,
 * and some leave it alone. Deciding which is which in Python cost about three times the
 * decoding itself. `scan` decodes with the same capstone library, handle and text the
 * Python binding uses (its function pointers and record layout come from capstone's
 * ctypes binding through `init`), copies the records into one bytes object, and lists
 * the instructions the walker must see, each with the last instruction before it that
 * clears the state. The rules mirror _X86Walker's Python fast path exactly; the walker
 * checks itself against that path in tests/test_callgraph_fast.py.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef size_t (*disasm_fn)(size_t, const uint8_t *, size_t, uint64_t, size_t, void **);
typedef void (*free_fn)(void *, size_t);
typedef int (*errno_fn)(size_t);

static disasm_fn cs_disasm_p;
static free_fn cs_free_p;
static errno_fn cs_errno_p;
static Py_ssize_t record_size, address_at, size_at, mnemonic_at, ops_at;

static PyObject *init(PyObject *self, PyObject *args) {
    unsigned long long disasm, free_, errno_;
    if (!PyArg_ParseTuple(args, "KKKnnnnn", &disasm, &free_, &errno_, &record_size,
                          &address_at, &size_at, &mnemonic_at, &ops_at))
        return NULL;
    cs_disasm_p = (disasm_fn)(uintptr_t)disasm;
    cs_free_p = (free_fn)(uintptr_t)free_;
    cs_errno_p = (errno_fn)(uintptr_t)errno_;
    Py_RETURN_NONE;
}

/* BRANCH, BRANCH_CLEARS and REFERS are the event tags Python reads (target * 4 + tag) */
enum { BRANCH, BRANCH_CLEARS, REFERS, CLEARS, NEUTRAL, SEEN };

/* The address `[rip + N]` names in `ops` (`next` is the next instruction's), as
 * callgraph._RIP's first match gives it; 0 where that pattern does not start at the
 * first "[rip " (Python decides then). */
static int rip_target(const char *ops, uint64_t next, uint64_t *target) {
    const char *at = strstr(ops, "[rip ");
    if (at == NULL)
        return 0;
    char sign = at[5];
    if ((sign != '+' && sign != '-') || at[6] != ' ')
        return 0;
    const char *digits = at + 7;
    int hex = digits[0] == '0' && digits[1] == 'x';
    if (hex)
        digits += 2;
    size_t count = strspn(digits, hex ? "0123456789abcdef" : "0123456789");
    if (count == 0 || count > 15 || digits[count] != ']' || (!hex && count > 1 && *digits == '0'))
        return 0;
    uint64_t displacement = strtoull(digits, NULL, hex ? 16 : 10);
    if (sign == '-' ? displacement > next : displacement > UINT64_MAX - next)
        return 0; /* Python's numbers do not wrap: it decides */
    *target = sign == '+' ? next + displacement : next - displacement;
    return (*target >> 61) == 0;
}

/* What the walker does with one instruction while no import address is pending:
 * nothing (NEUTRAL), clear its loaded register (CLEARS), branch to *target (a direct
 * call or a jump out of the function) and clear it or not, clear it and refer to
 * *target (`lea reg, [rip + N]`: REFERS), or look at it (SEEN). */
static int classify(const char *record, int absolute, uint64_t start, uint64_t end,
                    uint64_t *target) {
    const char *mnemonic = record + mnemonic_at, *ops = record + ops_at;
    int rip = strstr(ops, "rip") != NULL;
    if (absolute && strstr(ops, "0x") != NULL)
        return SEEN;
    if (mnemonic[0] == '\0' || strchr("cjlbnt", mnemonic[0]) == NULL)
        return rip ? SEEN : CLEARS;
    const char *space = strrchr(mnemonic, ' ');
    const char *name = space ? space + 1 : mnemonic;
    int call = strcmp(name, "call") == 0;
    if (call || name[0] == 'j' || strncmp(name, "loop", 4) == 0) {
        if (ops[0] != '0' || ops[1] != 'x')
            return SEEN;
        size_t digits = strspn(ops + 2, "0123456789abcdef");
        if (digits == 0 || digits > 16 || ops[2 + digits] != '\0')
            return SEEN; /* not a plain 64-bit number: Python decides */
        *target = strtoull(ops + 2, NULL, 16);
        if (*target >> 61)
            return SEEN; /* not an address (and target * 4 must fit) */
        int clears = call || strcmp(name, "jmp") == 0;
        if (call || *target < start || *target >= end)
            return clears ? BRANCH_CLEARS : BRANCH;
        return clears ? CLEARS : NEUTRAL;
    }
    if (rip) {
        uint64_t address;
        uint16_t size;
        memcpy(&address, record + address_at, sizeof address);
        memcpy(&size, record + size_at, sizeof size);
        if (strcmp(name, "lea") == 0 && address + size >= address &&
            rip_target(ops, address + size, target))
            return REFERS;
        return SEEN;
    }
    return strcmp(name, "test") == 0 || strcmp(name, "cmp") == 0 ? NEUTRAL : CLEARS;
}

/* scan(handle, code, offset, address, count, start, end, absolute)
 *   -> (decoded, records, events, last_clear, error)
 * Decodes at most `count` instructions of code[offset:] placed at `address`. `events`
 * is a flat list of three numbers for each instruction the walker must see: its index,
 * the index of the last clearing instruction before it (-1: none), and -1 when the
 * walker must read it, else target * 4 + tag (BRANCH, BRANCH_CLEARS, REFERS).
 * `last_clear` is that of the whole run; `error` capstone's errno when nothing was
 * decoded. */
static PyObject *scan(PyObject *self, PyObject *args) {
    unsigned long long handle, address, start, end;
    Py_buffer code;
    Py_ssize_t offset, count;
    int absolute;
    if (!PyArg_ParseTuple(args, "Ky*nKnKKp", &handle, &code, &offset, &address, &count,
                          &start, &end, &absolute))
        return NULL;
    if (cs_disasm_p == NULL) {
        PyBuffer_Release(&code);
        PyErr_SetString(PyExc_RuntimeError, "_x86scan.init was not called");
        return NULL;
    }
    if (offset < 0 || offset > code.len) {
        PyBuffer_Release(&code);
        PyErr_SetString(PyExc_ValueError, "offset outside the code");
        return NULL;
    }
    void *insn = NULL;
    size_t decoded;
    Py_BEGIN_ALLOW_THREADS
    decoded = cs_disasm_p((size_t)handle, (const uint8_t *)code.buf + offset,
                          (size_t)(code.len - offset), address, (size_t)count, &insn);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&code);
    if (decoded == 0) {
        int error = cs_errno_p((size_t)handle);
        return Py_BuildValue("(ny[]ni)", (Py_ssize_t)0, "", (Py_ssize_t)-1, error);
    }
    PyObject *records = PyBytes_FromStringAndSize((const char *)insn,
                                                  (Py_ssize_t)decoded * record_size);
    PyObject *events = PyList_New(0);
    if (records == NULL || events == NULL)
        goto fail;
    Py_ssize_t last_clear = -1;
    const char *base = (const char *)insn;
    for (size_t i = 0; i < decoded; i++) {
        const char *record = base + i * record_size;
        uint64_t target = 0;
        int kind = classify(record, absolute, start, end, &target);
        if (kind == CLEARS) {
            last_clear = (Py_ssize_t)i;
            continue;
        }
        if (kind == NEUTRAL)
            continue;
        PyObject *item[3] = {
            PyLong_FromSsize_t((Py_ssize_t)i),
            PyLong_FromSsize_t(last_clear),
            kind == SEEN ? PyLong_FromLong(-1) : PyLong_FromUnsignedLongLong((target << 2) | kind),
        };
        int failed = 0;
        for (int k = 0; k < 3; k++) {
            failed = failed || item[k] == NULL || PyList_Append(events, item[k]) < 0;
            Py_XDECREF(item[k]);
        }
        if (failed)
            goto fail;
    }
    cs_free_p(insn, decoded);
    return Py_BuildValue("(nNNni)", (Py_ssize_t)decoded, records, events, last_clear, 0);
fail:
    cs_free_p(insn, decoded);
    Py_XDECREF(records);
    Py_XDECREF(events);
    return NULL;
}

static PyMethodDef methods[] = {
    {"init", init, METH_VARARGS, "Set capstone's cs_disasm, cs_free, cs_errno and layout."},
    {"scan", scan, METH_VARARGS, "Decode a run of x86-64 code and list what matters."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_x86scan", "capstone decoding sorted for the call-graph walker",
    -1, methods,
};

PyMODINIT_FUNC PyInit__x86scan(void) { return PyModule_Create(&module); }
