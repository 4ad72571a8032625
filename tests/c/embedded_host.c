/* An embedded CPython host for tests/it/install.rs: initialises the interpreter itself, runs
 * the code given as its only argument, and finalises. Exit status: 0 when the code ran
 * without an exception, 1 when it raised, 2 on a usage error, 3 when finalising failed. */
#include <Python.h>

int main(int argc, char **argv) {
    if (argc != 2) {
        return 2;
    }
    Py_Initialize();
    int failed = PyRun_SimpleString(argv[1]) != 0;
    if (Py_FinalizeEx() < 0) {
        return 3;
    }
    return failed ? 1 : 0;
}
