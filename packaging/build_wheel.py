"""Builds the pickleguard-preload wheel from binaries built against glibc 2.17.

    python packaging/build_wheel.py --bin-dir target/x86_64-unknown-linux-gnu/release --out target/wheels

The wheel holds:
  pickleguard/                      the typing stub (__init__.pyi, py.typed) and a fallback that
                                    says a process without the preload is NOT protected
  pickleguard_preload/              `python -m pickleguard_preload ARGS`: runs the command
  <dist>.data/scripts/pickleguard   the command, installed into the environment's bin/
  <dist>.data/data/lib/pickleguard/ libpickleguard.so and libpickleguard_core.so, installed into
                                    <prefix>/lib/pickleguard/, where the command looks beside ../lib
Debug information is stripped from the copies when objcopy is available. Standard library only.
"""

import argparse
import base64
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DIST = "pickleguard_preload"
NAME = "pickleguard-preload"
TAGS = ["py3-none-manylinux_2_17_x86_64", "py3-none-manylinux2014_x86_64"]
PLATFORM = "manylinux_2_17_x86_64.manylinux2014_x86_64"


def version():
    with open(os.path.join(ROOT, "Cargo.toml")) as f:
        in_workspace = False
        for line in f:
            line = line.strip()
            if line.startswith("["):
                in_workspace = line == "[workspace.package]"
            elif in_workspace and line.startswith("version"):
                return line.split("=", 1)[1].strip().strip('"')
    raise SystemExit("no [workspace.package] version in Cargo.toml")


def metadata(ver):
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    return (
        "Metadata-Version: 2.1\n"
        f"Name: {NAME}\n"
        f"Version: {ver}\n"
        "Summary: Safe unpickling for ML models without changing the programs that load them (LD_PRELOAD guard, scanner and CLI)\n"
        "License: Apache-2.0\n"
        "Requires-Python: >=3.8\n"
        "Classifier: License :: OSI Approved :: Apache Software License\n"
        "Classifier: Operating System :: POSIX :: Linux\n"
        "Classifier: Programming Language :: Python :: 3\n"
        "Classifier: Topic :: Security\n"
        "Description-Content-Type: text/markdown\n"
        "\n" + readme
    )


def stripped(src, tmp):
    dst = os.path.join(tmp, os.path.basename(src))
    objcopy = shutil.which("objcopy")
    if objcopy:
        subprocess.run([objcopy, "--strip-debug", src, dst], check=True)
    else:
        shutil.copyfile(src, dst)
    return dst


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin-dir", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    ver = version()
    data = f"{DIST}-{ver}.data"
    info = f"{DIST}-{ver}.dist-info"
    os.makedirs(args.out, exist_ok=True)
    wheel = os.path.join(args.out, f"{DIST}-{ver}-py3-none-{PLATFORM}.whl")
    entries = []  # (archive name, bytes, mode)
    for package in ("pickleguard", "pickleguard_preload"):
        source = os.path.join(HERE, "python", package)
        for name in sorted(os.listdir(source)):
            if name.endswith((".py", ".pyi", ".typed")):
                with open(os.path.join(source, name), "rb") as f:
                    body = f.read()
                # The package's version is the workspace's.
                body = re.sub(rb'(?m)^__version__ = "[^"]*"', b'__version__ = "%s"' % ver.encode(), body)
                entries.append((f"{package}/{name}", body, 0o644))
    with tempfile.TemporaryDirectory() as tmp:
        for src, dest, mode in [
            ("pickleguard", f"{data}/scripts/pickleguard", 0o755),
            ("libpickleguard.so", f"{data}/data/lib/pickleguard/libpickleguard.so", 0o755),
            ("libpickleguard_core.so", f"{data}/data/lib/pickleguard/libpickleguard_core.so", 0o755),
        ]:
            path = os.path.join(args.bin_dir, src)
            if not os.path.isfile(path):
                raise SystemExit(f"build_wheel: `{path}` is missing: run `make wheel`")
            with open(stripped(path, tmp), "rb") as f:
                entries.append((dest, f.read(), mode))
    with open(os.path.join(ROOT, "LICENSE"), "rb") as f:
        entries.append((f"{info}/LICENSE", f.read(), 0o644))
    entries.append((f"{info}/METADATA", metadata(ver).encode(), 0o644))
    wheel_file = "Wheel-Version: 1.0\nGenerator: pickleguard packaging/build_wheel.py\nRoot-Is-Purelib: false\n"
    wheel_file += "".join(f"Tag: {tag}\n" for tag in TAGS)
    entries.append((f"{info}/WHEEL", wheel_file.encode(), 0o644))
    record = []
    for name, body, _ in entries:
        digest = base64.urlsafe_b64encode(hashlib.sha256(body).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(body)}")
    record.append(f"{info}/RECORD,,")
    entries.append((f"{info}/RECORD", ("\n".join(record) + "\n").encode(), 0o644))
    tmp_wheel = wheel + ".part"
    with zipfile.ZipFile(tmp_wheel, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, body, mode in entries:
            item = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))
            item.external_attr = (0o100000 | mode) << 16
            item.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(item, body)
    os.replace(tmp_wheel, wheel)
    print(wheel)


if __name__ == "__main__":
    sys.exit(main())
