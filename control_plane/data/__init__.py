"""Data sets as tables: reading them (``tables``: CSV, Parquet, JSON Lines, local or s3://) and
describing them (``schema``: inferred types, ranges, nulls and categories, and the check of new data
against a recorded schema).

A leaf: it depends on nothing in mlctl but ``errors``, so the registry (which records a schema at
registration), the PII scanner, the validation gate, the pipelines and drift monitoring all share
it without depending on each other.
"""
