"""Secure-by-default AWS constructs. Each has the shape
``Construct(scope, id, *, spec, kms_key=None, tags=None, logging=None)`` and is locked down with no
optional argument: without ``kms_key`` it creates its own customer-managed key."""
