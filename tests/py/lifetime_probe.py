# Run once per interpreter lifetime by the C hosts of tests/it/lifetimes.rs (the host defines
# LIFETIME; LIFETIME_MARKERS is a directory). Loads a pickle whose payload would create
# $LIFETIME_MARKERS/PWNED-<lifetime>, and prints one JSON line saying what happened.
import json
import os
import pickle

lifetime = globals().get("LIFETIME", 1)
marker = os.path.join(os.environ["LIFETIME_MARKERS"], "PWNED-%d" % lifetime)
payload = b"cos\nsystem\n(S'touch " + marker.encode() + b"'\ntR."
report = {"lifetime": lifetime}
try:
    import pickleguard

    report["active"] = pickleguard.is_active()
except ImportError as err:
    pickleguard = None
    report["active"] = "no module: %s" % err
try:
    pickle.loads(payload)
    report["refused"] = None
except pickle.UnpicklingError as err:
    report["refused"] = type(err).__name__
    report["module_class"] = pickleguard is not None and type(err) is pickleguard.UnsafeFileError
report["marker"] = os.path.exists(marker)
print(json.dumps(report), flush=True)
