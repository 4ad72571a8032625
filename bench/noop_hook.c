/* The floor for pickleguard's process overhead: a preload library whose constructor registers a
 * CPython audit hook that does nothing.
 *
 * Once any audit hook exists, CPython builds every audit event's argument tuple and calls the
 * hooks, so every event costs something whatever the hook does. Comparing pickleguard with this
 * library, not only with a process without any hook, separates the price of having a hook at all
 * (which any audit-hook-based protection pays) from the price of pickleguard's own code.
 *
 * Like pickleguard's shim it references no Python symbol at link time: it looks
 * PySys_AddAuditHook up in the process with dlsym(RTLD_DEFAULT) and does nothing when the process
 * is not a CPython >= 3.8.
 *
 * Built by bench/bench.py: cc -O2 -shared -fPIC -o noop_hook.so noop_hook.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stddef.h>

typedef int (*audit_hook_fn)(const char *event, void *args, void *user_data);
typedef int (*add_audit_hook_fn)(audit_hook_fn hook, void *user_data);

static int noop_audit_hook(const char *event, void *args, void *user_data) {
    (void)event;
    (void)args;
    (void)user_data;
    return 0;
}

__attribute__((constructor)) static void install_noop_audit_hook(void) {
    add_audit_hook_fn add = (add_audit_hook_fn)dlsym(RTLD_DEFAULT, "PySys_AddAuditHook");
    if (add != NULL) {
        add(noop_audit_hook, NULL);
    }
}
