#!/usr/bin/env python3
"""Writes a Functions app zip with explicit unix modes, so the package is the same whatever the
umask or the file system it was built on: the handler binary 0755 (the Functions host executes
it; zips made on Windows or by some editors lose the bit and the app never starts), other files
0644, folders 0755. Entries are sorted and dated 1980-01-01 so a rebuild of the same inputs gives
the same bytes.

  zip_app.py handler OUT --binary PATH --root REPO   host.json, handler, function-*/ from REPO
  zip_app.py folder OUT --dir DIR                     everything in DIR except local.settings.json
                                                      and what DIR/.funcignore lists
"""

import argparse
import fnmatch
import os
import stat
import sys
import zipfile

FIXED_DATE = (1980, 1, 1, 0, 0, 0)
ALWAYS_EXCLUDED = ["local.settings.json", ".funcignore"]


def add(archive, name, data, mode):
    info = zipfile.ZipInfo(name, FIXED_DATE)
    info.create_system = 3  # unix, so external_attr carries the mode
    is_dir = name.endswith("/")
    info.external_attr = ((stat.S_IFDIR if is_dir else stat.S_IFREG) | mode) << 16
    if is_dir:
        info.external_attr |= 0x10  # MS-DOS directory flag
    info.compress_type = zipfile.ZIP_STORED if is_dir else zipfile.ZIP_DEFLATED
    archive.writestr(info, data)


def tree(root, excluded):
    """(relative path, is_dir) for everything under root not excluded, sorted."""
    entries = []
    for directory, dirs, files in os.walk(root):
        relative_dir = os.path.relpath(directory, root)
        for name in sorted(dirs):
            relative = os.path.normpath(os.path.join(relative_dir, name))
            if not excluded(relative):
                entries.append((relative, True))
        dirs[:] = [d for d in dirs if not excluded(os.path.normpath(os.path.join(relative_dir, d)))]
        for name in files:
            relative = os.path.normpath(os.path.join(relative_dir, name))
            if not excluded(relative):
                entries.append((relative, False))
    return sorted(entries)


def write_tree(archive, root, entries, prefix=""):
    for relative, is_dir in entries:
        name = prefix + relative.replace(os.sep, "/")
        if is_dir:
            add(archive, name + "/", b"", 0o755)
        else:
            with open(os.path.join(root, relative), "rb") as source:
                add(archive, name, source.read(), 0o644)


def handler_zip(out, binary, root):
    functions = sorted(
        name for name in os.listdir(root)
        if name.startswith("function-") and os.path.isfile(os.path.join(root, name, "function.json"))
    )
    if not functions:
        sys.exit(f"zip_app.py: no function-*/function.json folders in {root}")
    with zipfile.ZipFile(out, "w") as archive:
        with open(os.path.join(root, "host.json"), "rb") as source:
            add(archive, "host.json", source.read(), 0o644)
        with open(binary, "rb") as source:
            add(archive, "handler", source.read(), 0o755)
        for function in functions:
            add(archive, function + "/", b"", 0o755)
            folder = os.path.join(root, function)
            write_tree(archive, folder, tree(folder, lambda _: False), prefix=function + "/")
    print(f"wrote {out}: handler, host.json, {', '.join(functions)}")


def folder_zip(out, directory):
    patterns = list(ALWAYS_EXCLUDED)
    ignore_file = os.path.join(directory, ".funcignore")
    if os.path.isfile(ignore_file):
        with open(ignore_file, encoding="utf-8") as lines:
            patterns += [line.strip().rstrip("/") for line in lines if line.strip() and not line.startswith("#")]

    def excluded(relative):
        parts = relative.split(os.sep)
        return any(fnmatch.fnmatch(relative, p) or fnmatch.fnmatch(parts[0], p) for p in patterns)

    if not os.path.isfile(os.path.join(directory, "host.json")):
        sys.exit(f"zip_app.py: {directory} has no host.json; it is not a Functions app folder")
    entries = tree(directory, excluded)
    with zipfile.ZipFile(out, "w") as archive:
        write_tree(archive, directory, entries)
    print(f"wrote {out}: {sum(1 for _, d in entries if not d)} files from {directory}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="kind", required=True)
    handler = sub.add_parser("handler")
    handler.add_argument("out")
    handler.add_argument("--binary", required=True)
    handler.add_argument("--root", required=True)
    folder = sub.add_parser("folder")
    folder.add_argument("out")
    folder.add_argument("--dir", required=True)
    args = parser.parse_args()
    if args.kind == "handler":
        handler_zip(args.out, args.binary, args.root)
    else:
        folder_zip(args.out, args.dir)


if __name__ == "__main__":
    main()
