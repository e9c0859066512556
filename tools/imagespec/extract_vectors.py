"""Extract the OCI image-spec's schema test vectors into a JSON fixture.

The image-spec tests its JSON schemas with tables of documents in Go source
(schema/*_test.go: `{manifest: `...`, fail: true}`). This reads those files from a
git checkout of https://github.com/opencontainers/image-spec at one commit and writes
every vector, with the file, kind, its comment and the expected outcome, to
tests/fixtures/imagespec-vectors.json (checked in, so the tests need no network):

    python3 tools/imagespec/extract_vectors.py GIT_DIR COMMIT \
        > tests/fixtures/imagespec-vectors.json
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

FILES = {
    "schema/manifest_test.go": "manifest",
    "schema/imageindex_test.go": "index",
    "schema/config_test.go": "config",
    "schema/descriptor_test.go": "descriptor",
    "schema/imagelayout_test.go": "layout",
}
_VECTOR = re.compile(
    r"(?://\s*(?P<comment>[^\n]*)\n\s*)?\{\s*(?P<field>\w+):\s*`(?P<doc>[^`]*)`,"
    r"\s*fail:\s*(?P<fail>true|false),"
)


def vectors(git_dir: str, commit: str) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for path, kind in FILES.items():
        source = subprocess.run(
            ["git", "--git-dir", git_dir, "show", f"{commit}:{path}"],
            check=True, capture_output=True, text=True,
        ).stdout  # fmt: skip
        for number, match in enumerate(_VECTOR.finditer(source)):
            out.append(
                {
                    "file": path,
                    "number": number,
                    "kind": kind,
                    "comment": (match["comment"] or "").strip(),
                    "fail": match["fail"] == "true",
                    "document": match["doc"],
                }
            )
    return out


def main() -> None:
    git_dir, commit = sys.argv[1], sys.argv[2]
    date = subprocess.run(
        ["git", "--git-dir", git_dir, "show", "-s", "--format=%cs", commit],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    doc = {
        "source": "https://github.com/opencontainers/image-spec",
        "license": "Apache-2.0 (the image-spec's test documents, unchanged)",
        "commit": commit,
        "commit_date": date,
        "vectors": vectors(git_dir, commit),
    }
    json.dump(doc, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
