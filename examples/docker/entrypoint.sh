#!/bin/sh
# Container entrypoint: refuse to start unguarded or with a bad pickleguard configuration,
# then run the command. The image sets LD_PRELOAD, so every Python process the command starts
# is guarded; `pickleguard check-config` exits 78 (EX_CONFIG) on any configuration problem.
set -eu

case " ${LD_PRELOAD:-} " in
    *libpickleguard.so[\ :]*) ;;
    *)
        echo "pickleguard-entrypoint: LD_PRELOAD does not load libpickleguard.so; refusing to start unguarded" >&2
        exit 78
        ;;
esac

pickleguard check-config --quiet || exit $?
exec "$@"
