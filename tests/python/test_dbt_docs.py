"""`dbt docs generate` works, and every model and column is described."""

from __future__ import annotations

import json
from pathlib import Path

from beep.config import Paths
from beep.dbt_runner import dbt_env, run_dbt


def test_docs_generate_and_every_column_is_described(built_paths: Paths, tmp_path: Path) -> None:
    paths = Paths(duckdb=tmp_path / "docs.duckdb", workdir=tmp_path / ".beep")
    paths.duckdb.write_bytes(built_paths.duckdb.read_bytes())
    run_dbt(paths, ["docs", "generate"], quiet=True)
    target = Path(dbt_env(paths)["DBT_TARGET_PATH"])
    manifest = json.loads((target / "manifest.json").read_text())
    catalog = json.loads((target / "catalog.json").read_text())
    undocumented = []
    for node in manifest["nodes"].values():
        if node["resource_type"] != "model" or node["package_name"] != "beep":
            continue
        if not node["description"].strip():
            undocumented.append(node["name"])
        documented = {name.lower() for name, col in node["columns"].items() if col["description"].strip()}
        actual = catalog["nodes"].get(node["unique_id"], {}).get("columns", {})
        undocumented += [f"{node['name']}.{c}" for c in actual if c.lower() not in documented]
    assert not undocumented, undocumented
