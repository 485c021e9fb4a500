"""Composition of the blueprint's environments into CDKTF stacks, one per layer.

``python -m stacks`` synthesizes the blueprint named by ``$BLUEPRINT`` (default
``blueprints/uae-local.yaml``) into ``$CDKTF_OUTDIR`` (default ``cdktf.out/``).
"""
