/* The two loops of judging a symbol set (lint/symbols.py, `_grouped`), in C.

   group(names, assume_libc, rows, make_row, uncreated) -> groups

   names:       list of (function, named, platform, bookkeeping), `_judged_name`'s
   assume_libc: whether a name without the C library's version tag is the C library's
   rows:        dict (function, platform, alone) -> row, filled here on a miss
   make_row:    make_row(function, platform, alone) -> row: a tuple, per target, of
                (group key, ready, note)
   uncreated:   uncreated(bookkeeping) -> whether nothing of the set creates what the
                function keeps books on

   groups: dict group key -> ({function: None}, [(symbol, detail, note)]), the names of
   one function (judged alike) batched first, in the order of `names`. Exactly what the
   Python of `_grouped` returns; tests/test_judge_grouping.py checks the two agree. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* The batch of `function`: (row, [named, ...]), made on first sight. Borrowed. */
static PyObject *
batch_of(PyObject *batches, PyObject *rows, PyObject *make_row, PyObject *function,
         PyObject *platform, PyObject *alone)
{
    PyObject *key = PyTuple_Pack(3, function, platform, alone);
    if (key == NULL)
        return NULL;
    PyObject *batch = PyDict_GetItemWithError(batches, key);
    if (batch != NULL || PyErr_Occurred()) {
        Py_DECREF(key);
        return batch;
    }
    PyObject *row = PyDict_GetItemWithError(rows, key);
    if (row != NULL) {
        Py_INCREF(row);
    } else if (PyErr_Occurred()) {
        Py_DECREF(key);
        return NULL;
    } else {
        row = PyObject_CallFunctionObjArgs(make_row, function, platform, alone, NULL);
        if (row == NULL || PyDict_SetItem(rows, key, row) < 0) {
            Py_XDECREF(row);
            Py_DECREF(key);
            return NULL;
        }
    }
    if (!PyTuple_Check(row)) {
        PyErr_SetString(PyExc_TypeError, "a row is a tuple");
        Py_DECREF(row);
        Py_DECREF(key);
        return NULL;
    }
    PyObject *named = PyList_New(0);
    batch = named == NULL ? NULL : PyTuple_Pack(2, row, named);
    Py_DECREF(row);
    Py_XDECREF(named);
    if (batch == NULL || PyDict_SetItem(batches, key, batch) < 0) {
        Py_XDECREF(batch);
        Py_DECREF(key);
        return NULL;
    }
    Py_DECREF(key);
    Py_DECREF(batch); /* the dict holds it */
    return batch;
}

/* Phase one: each name into its function's batch. 0, or -1 with an exception. */
static int
batch_names(PyObject *names, int assume_libc, PyObject *rows, PyObject *make_row,
            PyObject *alone_of, PyObject *batches)
{
    Py_ssize_t count = PyList_GET_SIZE(names);
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *name = PyList_GET_ITEM(names, i);
        if (!PyTuple_Check(name) || PyTuple_GET_SIZE(name) != 4) {
            PyErr_SetString(PyExc_TypeError, "a name is (function, named, platform, bookkeeping)");
            return -1;
        }
        PyObject *function = PyTuple_GET_ITEM(name, 0);
        int platform = assume_libc;
        if (!platform) {
            platform = PyObject_IsTrue(PyTuple_GET_ITEM(name, 2));
            if (platform < 0)
                return -1;
        }
        int alone = 0;
        PyObject *bookkeeping = PyTuple_GET_ITEM(name, 3);
        if (bookkeeping != Py_None) {
            PyObject *answer = PyObject_CallOneArg(alone_of, bookkeeping);
            if (answer == NULL)
                return -1;
            alone = PyObject_IsTrue(answer);
            Py_DECREF(answer);
            if (alone < 0)
                return -1;
        }
        PyObject *batch = batch_of(batches, rows, make_row, function,
                                   platform ? Py_True : Py_False, alone ? Py_True : Py_False);
        if (batch == NULL || PyList_Append(PyTuple_GET_ITEM(batch, 1), PyTuple_GET_ITEM(name, 1)) < 0)
            return -1;
    }
    return 0;
}

/* The group of `key` in `groups`: ({}, []), made on first sight. Borrowed. */
static PyObject *
group_of(PyObject *groups, PyObject *key)
{
    PyObject *group = PyDict_GetItemWithError(groups, key);
    if (group != NULL || PyErr_Occurred())
        return group;
    PyObject *labels = PyDict_New(), *items = PyList_New(0);
    group = (labels == NULL || items == NULL) ? NULL : PyTuple_Pack(2, labels, items);
    Py_XDECREF(labels);
    Py_XDECREF(items);
    if (group == NULL || PyDict_SetItem(groups, key, group) < 0) {
        Py_XDECREF(group);
        return NULL;
    }
    Py_DECREF(group);
    return group;
}

/* Phase two: each batch into its group for every target. 0, or -1. */
static int
group_batches(PyObject *batches, PyObject *groups)
{
    Py_ssize_t at = 0;
    PyObject *key, *batch;
    while (PyDict_Next(batches, &at, &key, &batch)) {
        PyObject *function = PyTuple_GET_ITEM(key, 0);
        PyObject *row = PyTuple_GET_ITEM(batch, 0), *named = PyTuple_GET_ITEM(batch, 1);
        for (Py_ssize_t t = 0; t < PyTuple_GET_SIZE(row); t++) {
            PyObject *entry = PyTuple_GET_ITEM(row, t);
            if (!PyTuple_Check(entry) || PyTuple_GET_SIZE(entry) != 3) {
                PyErr_SetString(PyExc_TypeError, "a row's entry is (key, ready, note)");
                return -1;
            }
            PyObject *group = group_of(groups, PyTuple_GET_ITEM(entry, 0));
            if (group == NULL || PyDict_SetItem(PyTuple_GET_ITEM(group, 0), function, Py_None) < 0)
                return -1;
            int ready = PyObject_IsTrue(PyTuple_GET_ITEM(entry, 1));
            if (ready < 0)
                return -1;
            if (ready)
                continue; /* the message names the ready ones */
            PyObject *items = PyTuple_GET_ITEM(group, 1), *note = PyTuple_GET_ITEM(entry, 2);
            for (Py_ssize_t i = 0; i < PyList_GET_SIZE(named); i++) {
                PyObject *pair = PyList_GET_ITEM(named, i);
                if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2) {
                    PyErr_SetString(PyExc_TypeError, "a named symbol is (symbol, detail)");
                    return -1;
                }
                PyObject *item = PyTuple_Pack(3, PyTuple_GET_ITEM(pair, 0),
                                              PyTuple_GET_ITEM(pair, 1), note);
                if (item == NULL)
                    return -1;
                int failed = PyList_Append(items, item);
                Py_DECREF(item);
                if (failed < 0)
                    return -1;
            }
        }
    }
    return 0;
}

static PyObject *
group(PyObject *self, PyObject *args)
{
    PyObject *names, *rows, *make_row, *alone_of;
    int assume_libc;
    if (!PyArg_ParseTuple(args, "O!pO!OO", &PyList_Type, &names, &assume_libc, &PyDict_Type,
                          &rows, &make_row, &alone_of))
        return NULL;
    PyObject *batches = PyDict_New();
    if (batches == NULL)
        return NULL;
    PyObject *groups = NULL;
    if (batch_names(names, assume_libc, rows, make_row, alone_of, batches) == 0) {
        groups = PyDict_New();
        if (groups != NULL && group_batches(batches, groups) < 0)
            Py_CLEAR(groups);
    }
    Py_DECREF(batches);
    return groups;
}

static PyMethodDef methods[] = {
    {"group", group, METH_VARARGS, "A symbol set's names batched by function and grouped."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_grouping", "Judging's grouping loops (lint/symbols.py).", -1,
    methods,
};

PyMODINIT_FUNC
PyInit__grouping(void)
{
    return PyModule_Create(&module);
}
