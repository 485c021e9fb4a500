"""Secure-by-default constructs. Every construct has one shape:
``Construct(scope, id, *, spec, kms_key=None, tags=None, logging=None)`` and is secure with no
optional arguments. CDKTF itself is reached only through ``modules.cdk`` (the seam)."""
