/* A host that is not linked to libpython and loads it after main starts, the way PyInstaller's
 * bootloader does: dlopen(LIBPYTHON, RTLD_NOW | RTLD_GLOBAL), then Py_Initialize, run CODE,
 * Py_FinalizeEx, all through dlsym.
 *
 * usage: late_dlopen_host LIBPYTHON CODE
 * Built by the end-to-end tests (tests/it/support.rs, c_host) with no Python headers. */
#include <dlfcn.h>
#include <stdio.h>

typedef void (*initialize_fn)(void);
typedef int (*run_fn)(const char *);
typedef int (*finalize_fn)(void);

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s LIBPYTHON CODE\n", argv[0]);
        return 2;
    }
    void *python = dlopen(argv[1], RTLD_NOW | RTLD_GLOBAL);
    if (python == NULL) {
        fprintf(stderr, "late_dlopen_host: %s\n", dlerror());
        return 2;
    }
    initialize_fn initialize = (initialize_fn)dlsym(python, "Py_Initialize");
    run_fn run = (run_fn)dlsym(python, "PyRun_SimpleString");
    finalize_fn finalize = (finalize_fn)dlsym(python, "Py_FinalizeEx");
    if (initialize == NULL || run == NULL || finalize == NULL) {
        fprintf(stderr, "late_dlopen_host: %s is not a libpython\n", argv[1]);
        return 2;
    }
    initialize();
    int status = run(argv[2]);
    if (finalize() != 0 || status != 0) {
        fprintf(stderr, "late_dlopen_host: the code raised\n");
        return 1;
    }
    return 0;
}
