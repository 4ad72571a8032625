/* An embedding host that runs several interpreter lifetimes in one process:
 * Py_Initialize, run CODE, Py_FinalizeEx, and again, LIFETIMES times. Each lifetime sees its
 * number as the global LIFETIME. With a third argument `fill-atexit`, every lifetime fills
 * CPython's Py_AtExit table before it ends, so nothing more can be registered there.
 *
 * usage: reinit_host CODE LIFETIMES [fill-atexit]
 * Built by the end-to-end tests (tests/it/support.rs, c_host) against pyenv's libpython. */
#include <Python.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void nothing(void) {}

int main(int argc, char **argv) {
    if (argc < 3 || argc > 4) {
        fprintf(stderr, "usage: %s CODE LIFETIMES [fill-atexit]\n", argv[0]);
        return 2;
    }
    int lifetimes = atoi(argv[2]);
    int fill_atexit = argc == 4 && strcmp(argv[3], "fill-atexit") == 0;
    for (int lifetime = 1; lifetime <= lifetimes; lifetime++) {
        Py_Initialize();
        char number[64];
        snprintf(number, sizeof number, "LIFETIME = %d\n", lifetime);
        if (PyRun_SimpleString(number) != 0 || PyRun_SimpleString(argv[1]) != 0) {
            fprintf(stderr, "reinit_host: lifetime %d: the code raised\n", lifetime);
            return 1;
        }
        if (fill_atexit) {
            while (Py_AtExit(nothing) == 0) {
            }
        }
        if (Py_FinalizeEx() != 0) {
            fprintf(stderr, "reinit_host: lifetime %d: Py_FinalizeEx failed\n", lifetime);
            return 1;
        }
    }
    return 0;
}
