"""Renders docs/api-contract.md from the sandbox's operations log (one JSON line per handler call)."""
import json
import os
import re
import sys

HEADER = """# The outbound API contract

Every call the handler makes to a Microsoft API, the published definition the simulated tenant
(`crates/sandbox`) checks it against, and the tests that reach it. The definitions are vendored
under `crates/sandbox/definitions/` with their provenance (repository, commit, path):

- ARM and the Log Analytics query API: Swagger files from `Azure/azure-rest-api-specs`
  (`azure-rest-api-specs/PROVENANCE-*.md`);
- Microsoft Graph: extracts of `microsoftgraph/msgraph-metadata` (CSDL) and the permissions,
  query options and updatable properties of each API reference page
  (`msgraph-metadata/PROVENANCE.md`, `permissions.json`);
- Defender for Endpoint, which has no OpenAPI document: `defender-endpoint/contract.json`, written
  from the API reference pages of `MicrosoftDocs/defender-docs`, each endpoint citing its page and
  commit.

The sandbox refuses a request these definitions refuse (api-version, path values, query options,
body schema, application permission, documented quota) in Microsoft's error shape, and turns an
answer of its own that departs from them into a 500 `SandboxContractViolation`, so the test that
reached it fails. A handler call to an operation missing from this table is refused with
`SandboxUnlistedOperation`: `scripts/api-contract` rewrites the table from a run of the handler's
tests (the "covered by" column is `test binary::test name`).

## Operations

| API | operation | api-version | method | path | permission (any one) | definition | covered by |
| --- | --- | --- | --- | --- | --- | --- | --- |
"""


def binary_name(path):
    stem = os.path.basename(path or "")
    return re.sub(r"-[0-9a-f]{16}$", "", stem)


def main(log_path):
    rows = {}
    with open(log_path, encoding="utf-8") as log:
        for line in log:
            line = line.strip()
            if not line:
                continue
            entry = json.loads(line)
            row = entry["row"]
            key = (row["api"], row["operation"], row["version"])
            slot = rows.setdefault(key, {"row": row, "tests": set()})
            test = entry.get("test") or ""
            binary = binary_name(entry.get("binary"))
            if test:
                slot["tests"].add(f"{binary}::{test}")
    out = [HEADER.rstrip("\n")]
    for key in sorted(rows):
        row = rows[key]["row"]
        tests = sorted(rows[key]["tests"])
        shown = ", ".join(f"`{t}`" for t in tests[:2])
        if len(tests) > 2:
            shown += f" (+{len(tests) - 2} more)"
        cells = [
            row["api"],
            f"`{row['operation']}`",
            row["version"],
            row["method"],
            f"`{row['path']}`",
            row.get("permissions") or "-",
            f"`{row['definition']}`",
            shown or "(none recorded)",
        ]
        out.append("| " + " | ".join(cells) + " |")
    print("\n".join(out))


if __name__ == "__main__":
    main(sys.argv[1])
