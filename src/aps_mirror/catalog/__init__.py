"""The catalog: the mirror's metadata as Parquet tables next to it, for analysts and operators."""
