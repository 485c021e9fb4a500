"""Infrastructure lifecycle: synthesize the blueprint's CDKTF stacks, bootstrap remote state, and run
terraform (plan, apply, drift, destroy) per stack in dependency order.

Public entry points: ``synth.synth`` and ``lifecycle`` (used by ``mlctl infra``)."""
