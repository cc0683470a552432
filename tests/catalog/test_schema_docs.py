"""The schema is documented: docs/catalog.md's reference is generated from schema.py and agrees."""

from __future__ import annotations

import json
from pathlib import Path

from aps_mirror.catalog.schema import (CATALOG_FORMAT_VERSION, DOCS_BEGIN, DOCS_END, TABLES,
                                       athena_ddl, markdown_reference, schema_document, sql_type)

DOCS = Path(__file__).resolve().parents[2] / "docs" / "catalog.md"


def test_docs_reference_is_generated_from_the_schema():
    text = DOCS.read_text(encoding="utf-8")
    generated = text.split(DOCS_BEGIN, 1)[1].split(DOCS_END, 1)[0]
    assert generated.strip() == markdown_reference().strip(), (
        "docs/catalog.md is out of date: run python -m aps_mirror.catalog.schema --update-docs docs/catalog.md")


def test_every_column_has_a_type_and_a_meaning_in_the_docs():
    text = DOCS.read_text(encoding="utf-8")
    for table in TABLES.values():
        assert f"### `{table.name}`" in text
        names = [c.name for c in table.all_columns()]
        assert len(names) == len(set(names)), f"{table.name}: a column twice"
        for column in table.all_columns():
            assert len(column.description) > 10, f"{table.name}.{column.name} needs a meaning"
            assert f"| `{column.name}` | {sql_type(column.type)} |" in text


def test_partition_columns_live_in_keys_not_in_files():
    for table in TABLES.values():
        stored = table.file_schema().names
        if table.partition:
            assert table.partition.name not in stored and table.schema().names[-1] == table.partition.name


def test_data_connector_ids_are_in_every_table():
    for table in TABLES.values():
        names = {c.name for c in table.all_columns()}
        assert {"hub_id", "bim360_account_id", "project_id", "bim360_project_id"} <= names, table.name


def test_schema_document_and_athena_ddl_cover_every_column():
    document = json.loads(json.dumps(schema_document()))  # JSON-able as written to S3
    assert document["catalog_format_version"] == CATALOG_FORMAT_VERSION
    for name, table in TABLES.items():
        assert [c["name"] for c in document["tables"][name]["columns"]] == [c.name for c in table.all_columns()]
        ddl = athena_ddl(table, "s3://b/p/_aps_mirror/catalog")
        for column in table.columns:
            assert f"`{column.name}` {sql_type(column.type)}" in ddl
        assert f"LOCATION 's3://b/p/_aps_mirror/catalog/{name}/'" in ddl
    assert "projection.run_date.type' = 'date'" in athena_ddl(TABLES["runs"], "s3://b/p")
