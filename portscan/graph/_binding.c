/* Binding what a unit and its walks import (graph/reach.py, `_reach_unit`), in C.

   bind_walked(entries, bound, chain, inside, state) -> None
   bind_symbols(symbols, chain, steps, inside, state) -> None
   walk_entries(names, chains, of_file, root, spelled) -> entries (`_Symbols.walked`)

   entries: `_Symbols.walked`'s list of (name, symbol, steps) of one walk
   bound:   set of the names this unit bound already in the walk's library
   chain:   tuple of ChainSteps from the unit to the walk's root
   inside:  dict symbol -> chain, the unit's `inside` entry of the library (None in
            bind_symbols: the unit's own imports)
   symbols: the symbols to bind, reached by `chain` then `steps`
   state:   (path, own, scope_bound, members, exports, split_cache, split, application,
             done, queue, platform, steps_cache, steps), the unit's and image's
             indexes as `_reach_unit` holds them

   Does for each entry (symbol) what the loop over `walked` and (or) `bind` of
   `_reach_unit` do, in the same order, to the same objects; tests/test_reach_binding.py checks the two
   agree. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

enum {
    S_PATH, S_OWN, S_SCOPE_BOUND, S_MEMBERS, S_EXPORTS, S_SPLIT_CACHE, S_SPLIT,
    S_APPLICATION, S_DONE, S_QUEUE, S_PLATFORM, S_STEPS_CACHE, S_STEPS, S_COUNT
};

/* Whether a file exporting a name under `versions` (a tuple, or NULL: not at all)
   provides it for an import of `version` (None: unversioned): `_exports_version`. */
static int
exports_version(PyObject *versions, PyObject *version)
{
    if (versions == NULL)
        return 0;
    if (!PyTuple_Check(versions)) {
        PyErr_SetString(PyExc_TypeError, "exported versions are a tuple");
        return -1;
    }
    if (version == Py_None)
        return 1;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(versions); i++) {
        PyObject *item = PyTuple_GET_ITEM(versions, i);
        if (item == Py_None)
            return 1;
        int same = PyObject_RichCompareBool(item, version, Py_EQ);
        if (same != 0)
            return same;
    }
    return 0;
}

/* `_Symbols.split(symbol)`: (name, version), borrowed from the cache. */
static PyObject *
split(PyObject **state, PyObject *symbol)
{
    PyObject *found = PyDict_GetItemWithError(state[S_SPLIT_CACHE], symbol);
    if (found == NULL) {
        if (PyErr_Occurred())
            return NULL;
        found = PyObject_CallOneArg(state[S_SPLIT], symbol); /* made and kept */
        if (found == NULL)
            return NULL;
        Py_DECREF(found); /* the cache holds it */
    }
    if (!PyTuple_Check(found) || PyTuple_GET_SIZE(found) != 2) {
        PyErr_SetString(PyExc_TypeError, "a split symbol is (name, version)");
        return NULL;
    }
    return found;
}

/* `_Scope.bind(symbol)`: the member that provides it, or None. Borrowed. */
static PyObject *
scope_bind(PyObject **state, PyObject *symbol, PyObject *name, PyObject *version)
{
    PyObject *found = PyDict_GetItemWithError(state[S_SCOPE_BOUND], symbol);
    if (found != NULL || PyErr_Occurred())
        return found;
    PyObject *members = state[S_MEMBERS], *exports = state[S_EXPORTS];
    found = Py_None;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(members) && i < PyList_GET_SIZE(exports); i++) {
        PyObject *versions = PyDict_GetItemWithError(PyList_GET_ITEM(exports, i), name);
        if (versions == NULL && PyErr_Occurred())
            return NULL;
        int provides = exports_version(versions, version);
        if (provides < 0)
            return NULL;
        if (provides) {
            found = PyList_GET_ITEM(members, i);
            break;
        }
    }
    if (PyDict_SetItem(state[S_SCOPE_BOUND], symbol, found) < 0)
        return NULL;
    return found;
}

/* `_Symbols.step(file, function)`: the image's one ChainStep of it. New reference. */
static PyObject *
step(PyObject **state, PyObject *file, PyObject *function)
{
    PyObject *steps = PyDict_GetItemWithError(state[S_STEPS_CACHE], file);
    if (steps == NULL) {
        if (PyErr_Occurred())
            return NULL;
        steps = PyObject_CallOneArg(state[S_STEPS], file); /* made and kept */
        if (steps == NULL)
            return NULL;
        Py_DECREF(steps);
    }
    return PyObject_GetItem(steps, function); /* a new step by its __missing__ */
}

/* `a` then `b` then `last` (if not NULL), as one tuple. New reference. */
static PyObject *
joined(PyObject *a, PyObject *b, PyObject *last)
{
    Py_ssize_t na = PyTuple_GET_SIZE(a), nb = PyTuple_GET_SIZE(b);
    PyObject *out = PyTuple_New(na + nb + (last != NULL));
    if (out == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < na; i++) {
        PyObject *item = PyTuple_GET_ITEM(a, i);
        Py_INCREF(item);
        PyTuple_SET_ITEM(out, i, item);
    }
    for (Py_ssize_t i = 0; i < nb; i++) {
        PyObject *item = PyTuple_GET_ITEM(b, i);
        Py_INCREF(item);
        PyTuple_SET_ITEM(out, na + i, item);
    }
    if (last != NULL) {
        Py_INCREF(last);
        PyTuple_SET_ITEM(out, na + nb, last);
    }
    return out;
}

/* `bind(symbol, chain, steps, inside)` of `_reach_unit`. 0, or -1 with an exception. */
static int
bind(PyObject **state, PyObject *symbol, PyObject *chain, PyObject *steps, PyObject *inside)
{
    PyObject *pair = split(state, symbol);
    if (pair == NULL)
        return -1;
    PyObject *name = PyTuple_GET_ITEM(pair, 0), *version = PyTuple_GET_ITEM(pair, 1);
    PyObject *versions = PyDict_GetItemWithError(state[S_OWN], name);
    if (versions == NULL && PyErr_Occurred())
        return -1;
    int own = exports_version(versions, version);
    if (own < 0)
        return -1;
    PyObject *provider = own ? state[S_PATH] : scope_bind(state, symbol, name, version);
    if (provider == NULL)
        return -1;
    int application = PySet_Contains(state[S_APPLICATION], provider);
    if (application < 0)
        return -1;
    if (application) {
        PyObject *key = PyTuple_Pack(2, provider, name);
        if (key == NULL)
            return -1;
        int done = PySet_Contains(state[S_DONE], key);
        if (done == 0 && PySet_Add(state[S_DONE], key) == 0) {
            PyObject *chained = joined(chain, steps, NULL);
            PyObject *walk = chained == NULL ? NULL : PyTuple_Pack(3, provider, name, chained);
            Py_XDECREF(chained);
            PyObject *appended = walk == NULL ? NULL
                : PyObject_CallMethod(state[S_QUEUE], "append", "(O)", walk);
            Py_XDECREF(walk);
            done = appended == NULL ? -1 : 1;
            Py_XDECREF(appended);
        }
        Py_DECREF(key);
        return done < 0 ? -1 : 0;
    }
    int unit = PyObject_RichCompareBool(provider, state[S_PATH], Py_EQ);
    if (unit != 0)
        return unit < 0 ? -1 : 0; /* the unit's own code is judged whole already */
    PyObject *known = PyDict_GetItemWithError(state[S_PLATFORM], symbol);
    if (known == NULL && PyErr_Occurred())
        return -1;
    Py_ssize_t length = PyTuple_GET_SIZE(chain) + PyTuple_GET_SIZE(steps) + 1;
    int shorter = known == NULL || length < PyObject_Length(known);
    if (!shorter) {
        if (inside == Py_None)
            return 0;
        int kept = PyDict_Contains(inside, symbol);
        if (kept != 0)
            return kept < 0 ? -1 : 0;
    }
    PyObject *file = provider == Py_None ? PyUnicode_FromString("") : (Py_INCREF(provider), provider);
    if (file == NULL)
        return -1;
    PyObject *last = step(state, file, name);
    Py_DECREF(file);
    if (last == NULL)
        return -1;
    PyObject *full = joined(chain, steps, last);
    Py_DECREF(last);
    if (full == NULL)
        return -1;
    int failed = shorter && PyDict_SetItem(state[S_PLATFORM], symbol, full) < 0;
    if (!failed && inside != Py_None) {
        PyObject *kept = PyDict_SetDefault(inside, symbol, full);
        failed = kept == NULL;
    }
    Py_DECREF(full);
    return failed ? -1 : 0;
}

/* The items of the unit's state tuple, checked; NULL with an exception. */
static PyObject **
unit_state(PyObject *state_tuple)
{
    if (PyTuple_GET_SIZE(state_tuple) != S_COUNT) {
        PyErr_SetString(PyExc_TypeError, "the unit's state has 13 items");
        return NULL;
    }
    PyObject **state = &PyTuple_GET_ITEM(state_tuple, 0);
    if (!PyDict_Check(state[S_OWN]) || !PyDict_Check(state[S_SCOPE_BOUND])
        || !PyList_Check(state[S_MEMBERS]) || !PyList_Check(state[S_EXPORTS])
        || !PyDict_Check(state[S_SPLIT_CACHE]) || !PySet_Check(state[S_APPLICATION])
        || !PySet_Check(state[S_DONE]) || !PyDict_Check(state[S_PLATFORM])
        || !PyDict_Check(state[S_STEPS_CACHE])) {
        PyErr_SetString(PyExc_TypeError, "the unit's state is not as _reach_unit holds it");
        return NULL;
    }
    return state;
}

static PyObject *
bind_symbols(PyObject *self, PyObject *args)
{
    PyObject *symbols, *chain, *steps, *inside, *state_tuple;
    if (!PyArg_ParseTuple(args, "OO!O!OO!", &symbols, &PyTuple_Type, &chain, &PyTuple_Type,
                          &steps, &inside, &PyTuple_Type, &state_tuple))
        return NULL;
    PyObject **state = unit_state(state_tuple);
    if (state == NULL)
        return NULL;
    if (inside != Py_None && !PyDict_Check(inside)) {
        PyErr_SetString(PyExc_TypeError, "inside is a dict or None");
        return NULL;
    }
    PyObject *sequence = PySequence_Fast(symbols, "the symbols are a sequence");
    if (sequence == NULL)
        return NULL;
    int failed = 0;
    for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(sequence) && !failed; i++)
        failed = bind(state, PySequence_Fast_GET_ITEM(sequence, i), chain, steps, inside) < 0;
    Py_DECREF(sequence);
    if (failed)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *
bind_walked(PyObject *self, PyObject *args)
{
    PyObject *entries, *bound, *chain, *inside, *state_tuple;
    if (!PyArg_ParseTuple(args, "O!O!O!O!O!", &PyList_Type, &entries, &PySet_Type, &bound,
                          &PyTuple_Type, &chain, &PyDict_Type, &inside, &PyTuple_Type,
                          &state_tuple))
        return NULL;
    PyObject **state = unit_state(state_tuple);
    if (state == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(entries); i++) {
        PyObject *entry = PyList_GET_ITEM(entries, i);
        if (!PyTuple_Check(entry) || PyTuple_GET_SIZE(entry) != 3
            || !PyTuple_Check(PyTuple_GET_ITEM(entry, 2))) {
            PyErr_SetString(PyExc_TypeError, "a walked entry is (name, symbol, steps)");
            return NULL;
        }
        PyObject *name = PyTuple_GET_ITEM(entry, 0);
        int seen = PySet_Contains(bound, name);
        if (seen < 0)
            return NULL;
        if (seen)
            continue; /* bound already, by a chain at most as long */
        if (PySet_Add(bound, name) < 0
            || bind(state, PyTuple_GET_ITEM(entry, 1), chain, PyTuple_GET_ITEM(entry, 2), inside) < 0)
            return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
walk_entries(PyObject *self, PyObject *args)
{
    PyObject *names, *chains, *of_file, *root, *spelled;
    if (!PyArg_ParseTuple(args, "O!O!OOO!", &PyList_Type, &names, &PyDict_Type, &chains,
                          &of_file, &root, &PyDict_Type, &spelled))
        return NULL;
    Py_ssize_t count = PyList_GET_SIZE(names);
    PyObject *entries = PyList_New(count);
    if (entries == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *name = PyList_GET_ITEM(names, i);
        PyObject *chain = PyDict_GetItemWithError(chains, name);
        if (chain == NULL) {
            if (!PyErr_Occurred())
                PyErr_SetObject(PyExc_KeyError, name);
            goto failed;
        }
        if (!PyTuple_Check(chain)) {
            PyErr_SetString(PyExc_TypeError, "a chain is a tuple");
            goto failed;
        }
        /* the root's step, then the steps of the chain without its root label and import */
        Py_ssize_t inner = PyTuple_GET_SIZE(chain) - 2;
        PyObject *steps = PyTuple_New(1 + (inner > 0 ? inner : 0));
        if (steps == NULL)
            goto failed;
        Py_INCREF(root);
        PyTuple_SET_ITEM(steps, 0, root);
        for (Py_ssize_t j = 0; j < inner; j++) {
            PyObject *item = PyObject_GetItem(of_file, PyTuple_GET_ITEM(chain, j + 1));
            if (item == NULL) {
                Py_DECREF(steps);
                goto failed;
            }
            PyTuple_SET_ITEM(steps, j + 1, item);
        }
        PyObject *spelling = PyDict_GetItemWithError(spelled, name);
        if (spelling == NULL && PyErr_Occurred()) {
            Py_DECREF(steps);
            goto failed;
        }
        PyObject *entry = PyTuple_Pack(3, name, spelling != NULL ? spelling : name, steps);
        Py_DECREF(steps);
        if (entry == NULL)
            goto failed;
        PyList_SET_ITEM(entries, i, entry);
    }
    return entries;
failed:
    Py_DECREF(entries); /* its unset items are NULL, which a list's dealloc skips */
    return NULL;
}

static PyMethodDef methods[] = {
    {"bind_walked", bind_walked, METH_VARARGS, "Bind what one walk imports, for one unit."},
    {"bind_symbols", bind_symbols, METH_VARARGS, "Bind these symbols, for one unit."},
    {"walk_entries", walk_entries, METH_VARARGS, "`_Symbols.walked`'s entries of one walk."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_binding", "Reachability's binding loop (graph/reach.py).", -1,
    methods,
};

PyMODINIT_FUNC
PyInit__binding(void)
{
    return PyModule_Create(&module);
}
