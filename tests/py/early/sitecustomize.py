# Captures references to the unpickling functions at interpreter start-up, before the
# program's own code runs: a guard that patched pickle.loads later would miss these.
import builtins
import pickle

builtins.PICKLEGUARD_TEST_EARLY_LOADS = pickle.loads
builtins.PICKLEGUARD_TEST_EARLY_UNPICKLER = pickle.Unpickler
