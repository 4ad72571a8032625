"""``python -m pickleguard_preload ARGS``: the ``pickleguard`` command installed with this wheel.

``python -m pickleguard_preload doctor`` checks this very interpreter.
"""

import os
import sys
import sysconfig


def _command():
    for scheme_path in (sysconfig.get_path("scripts"), os.path.dirname(sys.executable)):
        candidate = os.path.join(scheme_path, "pickleguard")
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def main():
    args = sys.argv[1:]
    if args[:1] == ["doctor"] and not any(not a.startswith("-") for a in args[1:]):
        args.append(sys.executable)
    command = _command()
    if command is None:
        sys.stderr.write(
            "pickleguard: cannot find the `pickleguard` command in %s: reinstall pickleguard-preload\n"
            % sysconfig.get_path("scripts")
        )
        return 2
    try:
        os.execv(command, [command] + args)
    except OSError as err:
        sys.stderr.write("pickleguard: cannot run `%s`: %s\n" % (command, err))
        return 126


if __name__ == "__main__":
    sys.exit(main())
