"""dbt conventions: the raw export is a source the staging models read through source(), the marts
read the Python-owned tables through a staging layer, and the project says which dbt it needs."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from beep.config import PROJECT_DIR, Paths
from beep.dbt_runner import dbt_env, run_dbt


def test_sources_and_staging_layers_in_the_manifest(tmp_path: Path) -> None:
    paths = Paths(duckdb=tmp_path / "beep.duckdb", workdir=tmp_path / ".beep")
    run_dbt(paths, ["parse"], quiet=True)
    manifest = json.loads((Path(dbt_env(paths)["DBT_TARGET_PATH"]) / "manifest.json").read_text())
    nodes = manifest["nodes"]

    def parents(model: str) -> set[str]:
        return set(nodes[f"model.beep.{model}"]["depends_on"]["nodes"])

    src = "source.beep.slack_export."
    assert {f"{src}users", f"{src}org_users"} <= parents("stg_slack__users")
    assert {f"{src}channels", f"{src}groups", f"{src}mpims", f"{src}dms"} <= parents("stg_slack__channels")
    assert parents("stg_slack__messages") == {f"{src}day_files"}
    assert parents("stg_slack__day_files") == {f"{src}day_files"}
    assert manifest["sources"][f"{src}day_files"]["identifier"] == "*/*.json"

    # marts read the Python-owned tables only through stg_beep__ models
    for mart, staging in {"refined_training_examples": {"stg_beep__refine_runs", "stg_beep__refine_verdicts"},
                          "evaluation_runs": {"stg_beep__eval_runs"}, "evaluation_metrics": {"stg_beep__metrics"},
                          "evaluation_predictions": {"stg_beep__predictions"}}.items():
        assert {f"model.beep.{s}" for s in staging} <= parents(mart)
        assert not any(p.startswith("source.") for p in parents(mart)), mart
    for name, node in nodes.items():
        if name.startswith("model.beep.stg_beep__"):
            assert node["config"]["materialized"] == "ephemeral"
            assert all(p.startswith("source.beep.beep_") for p in node["depends_on"]["nodes"])

    project = yaml.safe_load((PROJECT_DIR / "dbt_project.yml").read_text())
    assert project["require-dbt-version"]
