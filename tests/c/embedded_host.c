/* An embedded CPython host for tests/it/install.rs: initialises the interpreter itself, runs
 * the code given as its first argument, and finalises; as many rounds as its second argument
 * says (default 1), the way a host that restarts Python does. Exit status: 0 when the code ran
 * without an exception in every round, 10 + the round when it raised, 2 on a usage error, 20 +
 * the round when finalising failed. */
#include <Python.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    if (argc < 2 || argc > 3) {
        return 2;
    }
    int rounds = argc == 3 ? atoi(argv[2]) : 1;
    for (int round = 0; round < rounds; round++) {
        Py_Initialize();
        int failed = PyRun_SimpleString(argv[1]) != 0;
        if (Py_FinalizeEx() < 0) {
            return 20 + round;
        }
        if (failed) {
            return 10 + round;
        }
    }
    return 0;
}
