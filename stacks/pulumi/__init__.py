"""The Pulumi backend: the same blueprint rendered with Pulumi instead of CDKTF (optional extra
``.[pulumi]``). Nothing outside this package and its tests imports ``pulumi``; see docs/pulumi.md."""
