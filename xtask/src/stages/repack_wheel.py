"""Lists or repacks a wheel, for `cargo xtask build-wheels` (xtask/src/stages/repack.rs).

    repack_wheel.py list WHEEL
        prints a JSON list of the wheel's members, in order: {"name", "sha256", "mode"}.
    repack_wheel.py repack OLD NEW SPEC
        writes NEW: OLD's members without those SPEC's "drop" names, plus SPEC's "add" pairs
        [member name, file path]; the package's members sorted by name, the rest in OLD's order,
        RECORD rewritten last. SPEC is a file holding a JSON object.

Only the standard library: it runs on the interpreter the project requires.
"""

import base64
import hashlib
import json
import sys
import zipfile

# maturin writes every member with this date (reproducible wheels).
DATE = (1980, 1, 1, 0, 0, 0)


def members(path):
    with zipfile.ZipFile(path) as wheel:
        return [
            {
                "name": info.filename,
                "sha256": hashlib.sha256(wheel.read(info)).hexdigest(),
                "mode": info.external_attr >> 16,
            }
            for info in wheel.infolist()
        ]


def record_line(name, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def entry(name, mode):
    info = zipfile.ZipInfo(name, DATE)
    info.external_attr = mode << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    return info


def repack(old_path, new_path, spec):
    drop = set(spec["drop"])
    with zipfile.ZipFile(old_path) as old:
        infos = old.infolist()
        records = [i for i in infos if i.filename.endswith(".dist-info/RECORD")]
        if len(records) != 1:
            raise SystemExit(f"{old_path} has {len(records)} RECORD files, not one")
        record = records[0].filename
        kept = [
            (i.filename, i.external_attr >> 16, old.read(i))
            for i in infos
            if i.filename not in drop and i.filename != record
        ]
    added = []
    for name, path in spec["add"]:
        with open(path, "rb") as source:
            added.append((name, 0o100644, source.read()))
    package = sorted(
        [m for m in kept if ".dist-info/" not in m[0]] + added, key=lambda m: m[0]
    )
    rest = [m for m in kept if ".dist-info/" in m[0]]
    lines = []
    with zipfile.ZipFile(new_path, "w") as new:
        for name, mode, data in package + rest:
            new.writestr(entry(name, mode), data)
            lines.append(record_line(name, data))
        lines.append(f"{record},,")
        new.writestr(entry(record, 0o100644), "".join(f"{line}\n" for line in lines))


def main(argv):
    if len(argv) == 3 and argv[1] == "list":
        json.dump(members(argv[2]), sys.stdout)
    elif len(argv) == 5 and argv[1] == "repack":
        with open(argv[4], encoding="utf-8") as spec:
            repack(argv[2], argv[3], json.load(spec))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
