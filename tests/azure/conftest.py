"""Azure fixtures: ``azure_synth`` and ``multicloud_synth`` are the session's shared syntheses of
blueprints/uae-prod-azure.yaml and uae-multicloud.yaml, in tests/conftest.py (tests/synthesis.py)."""
