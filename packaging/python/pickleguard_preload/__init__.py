"""The launcher of the pickleguard-preload wheel: ``python -m pickleguard_preload ARGS`` runs
the ``pickleguard`` command installed with it. (``import pickleguard`` is the guard's own
module in a preloaded process, so the launcher has a name of its own.)"""
