#!/usr/bin/env python3
"""Small OCI image-layout helper for the corpus builder (Python stdlib only).

From the team's corpus harness (shared/harness/ocitool.py), owned here since issue 13;
build_corpus.sh calls `stats` and `index`.

ocitool.py stats [--json OUT] [--lists DIR] LAYOUT_DIR...
    For each OCI layout dir (and each platform of an image index in it):
    layers, compressed size (sum of layer blobs), uncompressed size (sum of
    the layer tar streams), files and ELF files in the final (flattened,
    whiteouts applied) filesystem.  --lists writes DIR/<name>[.<arch>].elf.txt
    with the ELF paths of the final filesystem.

ocitool.py index --layout BUILD_LAYOUT --tags TAG1,TAG2 --out DIR --ref REF
    Make a new OCI layout DIR whose index.json points (as REF) at an OCI
    image index listing the manifests of TAG1, TAG2... from BUILD_LAYOUT,
    with each manifest's platform taken from its config.

ocitool.py layers LAYOUT_DIR [REF]
    Print the layer blob paths (one per line) of the image, for timing the
    plain decompression floor.
"""

import argparse
import gzip
import hashlib
import json
import os
import shutil
import tarfile

INDEX_TYPES = {
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
}


def blob_path(layout, digest):
    alg, hexd = digest.split(":", 1)
    return os.path.join(layout, "blobs", alg, hexd)


def read_json_blob(layout, digest):
    with open(blob_path(layout, digest), "rb") as f:
        return json.load(f)


class CountingReader:
    """File-like wrapper that counts the (decompressed) bytes read through it."""

    def __init__(self, raw):
        self.raw = raw
        self.count = 0

    def read(self, n=-1):
        data = self.raw.read(n)
        self.count += len(data)
        return data


def open_layer(path, media_type):
    f = open(path, "rb")  # noqa: SIM115 - returned to the caller, read to the end
    head = f.read(4)
    f.seek(0)
    if head[:2] == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=f, mode="rb")
    if head == b"\x28\xb5\x2f\xfd":
        raise SystemExit(f"zstd layer not supported by ocitool: {path}")
    return f  # uncompressed tar


def norm(name):
    while name.startswith("./"):
        name = name[2:]
    name = name.lstrip("/").rstrip("/")
    return "" if name == "." else name


def walk_manifests(layout):
    """Yield (ref_name, platform_dict_or_None, manifest_descriptor)."""
    with open(os.path.join(layout, "index.json")) as f:
        top = json.load(f)
    for d in top.get("manifests", []):
        ref = d.get("annotations", {}).get("org.opencontainers.image.ref.name", "")
        if d.get("mediaType") in INDEX_TYPES:
            idx = read_json_blob(layout, d["digest"])
            for m in idx.get("manifests", []):
                yield ref, m.get("platform"), m
        else:
            yield ref, d.get("platform"), d


def image_stats(layout, mdesc, lists_path=None):
    manifest = read_json_blob(layout, mdesc["digest"])
    config = read_json_blob(layout, manifest["config"]["digest"])
    state = {}  # path -> (kind, is_elf)
    compressed = 0
    uncompressed = 0
    per_layer = []
    for layer in manifest["layers"]:
        compressed += layer["size"]
        raw = open_layer(blob_path(layout, layer["digest"]), layer.get("mediaType", ""))
        cr = CountingReader(raw)
        whiteouts, opaque, entries = [], [], {}
        with tarfile.open(fileobj=cr, mode="r|") as tar:
            for m in tar:
                name = norm(m.name)
                base = os.path.basename(name)
                parent = os.path.dirname(name)
                if base == ".wh..wh..opq":
                    opaque.append(parent)
                    continue
                if base.startswith(".wh."):
                    whiteouts.append(os.path.join(parent, base[4:]))
                    continue
                if m.isreg():
                    is_elf = False
                    if m.size >= 4:
                        fo = tar.extractfile(m)
                        is_elf = fo.read(4) == b"\x7fELF"
                    entries[name] = ("reg", is_elf)
                elif m.islnk():
                    tgt = norm(m.linkname)
                    src = entries.get(tgt) or state.get(tgt) or ("reg", False)
                    entries[name] = ("lnk", src[1])
                elif m.issym():
                    entries[name] = ("sym", False)
                elif m.isdir():
                    entries[name] = ("dir", False)
                else:
                    entries[name] = ("other", False)
        while cr.read(1 << 20):  # drain the rest (tar end padding) for the true size
            pass
        size = cr.count
        uncompressed += size
        for d in opaque:
            pre = d + "/" if d else ""
            for k in [k for k in state if k.startswith(pre) and k != d]:
                del state[k]
        for w in whiteouts:
            pre = w + "/"
            for k in [k for k in state if k == w or k.startswith(pre)]:
                del state[k]
        state.update(entries)
        per_layer.append(
            {
                "digest": layer["digest"],
                "compressed": layer["size"],
                "uncompressed": size,
                "entries": len(entries),
                "whiteouts": len(whiteouts) + len(opaque),
            }
        )
    elf = sorted(k for k, v in state.items() if v[0] in ("reg", "lnk") and v[1])
    files = sum(1 for v in state.values() if v[0] in ("reg", "lnk"))
    if lists_path:
        with open(lists_path, "w") as f:
            f.write("".join("/" + p + "\n" for p in elf))
    cfg = config.get("config") or {}
    return {
        "manifest": mdesc["digest"],
        "manifest_media_type": manifest.get("mediaType", mdesc.get("mediaType")),
        "architecture": config.get("architecture"),
        "os": config.get("os"),
        "layers": len(manifest["layers"]),
        "compressed": compressed,
        "uncompressed": uncompressed,
        "files": files,
        "elf_files": len(elf),
        "exposed_ports": sorted((cfg.get("ExposedPorts") or {}).keys()),
        "entrypoint": cfg.get("Entrypoint"),
        "cmd": cfg.get("Cmd"),
        "per_layer": per_layer,
    }


def human(n):
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{n} B"
        n /= 1024.0


def cmd_stats(args):
    rows = []
    for layout in args.layouts:
        layout = layout.rstrip("/")
        name = os.path.basename(layout)
        plats = list(walk_manifests(layout))
        multi = len(plats) > 1
        for ref, plat, mdesc in plats:
            arch = (plat or {}).get("architecture")
            label = f"{name} [{arch}]" if multi else name
            lp = None
            if args.lists:
                os.makedirs(args.lists, exist_ok=True)
                lp = os.path.join(
                    args.lists, f"{name}.{arch}.elf.txt" if multi else f"{name}.elf.txt"
                )
            st = image_stats(layout, mdesc, lp)
            st.update({"layout": name, "ref": ref, "label": label})
            rows.append(st)
    hdr = (
        f"{'image':34} {'arch':6} {'layers':>6} {'compressed':>11} {'uncompressed':>12} "
        f"{'files':>6} {'ELF':>5}  ports"
    )
    print(hdr)
    print("-" * len(hdr))
    for r in rows:
        print(
            f"{r['label']:34} {r['architecture'] or '':6} {r['layers']:>6} "
            f"{human(r['compressed']):>11} {human(r['uncompressed']):>12} {r['files']:>6} "
            f"{r['elf_files']:>5}  {','.join(r['exposed_ports'])}"
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


def copy_blob(src_layout, dst_layout, digest):
    src = blob_path(src_layout, digest)
    dst = blob_path(dst_layout, digest)
    if os.path.exists(dst):
        return
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def cmd_index(args):
    with open(os.path.join(args.layout, "index.json")) as f:
        top = json.load(f)
    by_tag = {
        d.get("annotations", {}).get("org.opencontainers.image.ref.name"): d
        for d in top["manifests"]
    }
    if os.path.exists(args.out):
        shutil.rmtree(args.out)
    os.makedirs(os.path.join(args.out, "blobs", "sha256"))
    entries = []
    for tag in args.tags.split(","):
        d = by_tag.get(tag)
        if d is None:
            raise SystemExit(f"tag {tag} not in {args.layout}")
        man = read_json_blob(args.layout, d["digest"])
        cfg = read_json_blob(args.layout, man["config"]["digest"])
        for dg in [d["digest"], man["config"]["digest"]] + [
            layer["digest"] for layer in man["layers"]
        ]:
            copy_blob(args.layout, args.out, dg)
        plat = {"architecture": cfg["architecture"], "os": cfg["os"]}
        if cfg.get("variant"):
            plat["variant"] = cfg["variant"]
        entries.append(
            {
                "mediaType": d["mediaType"],
                "digest": d["digest"],
                "size": d["size"],
                "platform": plat,
            }
        )
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": entries,
    }
    data = json.dumps(index, separators=(",", ":")).encode()
    dg = "sha256:" + hashlib.sha256(data).hexdigest()
    with open(blob_path(args.out, dg), "wb") as f:
        f.write(data)
    with open(os.path.join(args.out, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    with open(os.path.join(args.out, "index.json"), "w") as f:
        json.dump(
            {
                "schemaVersion": 2,
                "manifests": [
                    {
                        "mediaType": "application/vnd.oci.image.index.v1+json",
                        "digest": dg,
                        "size": len(data),
                        "annotations": {"org.opencontainers.image.ref.name": args.ref},
                    }
                ],
            },
            f,
        )
    print(f"index {dg} -> {args.out}:{args.ref} ({len(entries)} platforms)")


def cmd_layers(args):
    for ref, _plat, mdesc in walk_manifests(args.layout):
        if args.ref and ref != args.ref:
            continue
        man = read_json_blob(args.layout, mdesc["digest"])
        for layer in man["layers"]:
            print(blob_path(args.layout, layer["digest"]))


def main():
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("stats")
    s.add_argument("--json")
    s.add_argument("--lists")
    s.add_argument("layouts", nargs="+")
    s.set_defaults(fn=cmd_stats)
    i = sub.add_parser("index")
    i.add_argument("--layout", required=True)
    i.add_argument("--tags", required=True)
    i.add_argument("--out", required=True)
    i.add_argument("--ref", required=True)
    i.set_defaults(fn=cmd_index)
    ls = sub.add_parser("layers")
    ls.add_argument("layout")
    ls.add_argument("ref", nargs="?")
    ls.set_defaults(fn=cmd_layers)
    args = ap.parse_args()
    args.fn(args)


if __name__ == "__main__":
    main()
