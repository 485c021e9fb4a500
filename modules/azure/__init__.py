"""Secure-by-default Azure constructs, the Azure twins of ``modules/aws``.

Every construct has the shape ``Construct(scope, id, *, spec, kms_key=None, tags=None, logging=None)``:
``kms_key`` is a Key Vault key id used as the customer-managed key, ``tags`` a dict merged onto every
taggable resource, ``logging`` a :class:`~modules.azure.common.LogSink` (the Log Analytics workspace
every diagnostic setting writes to). With no optional argument each construct is still locked down:
private, encrypted, with public access and local credentials off.
"""
