"""The product's verbs, one home each: the CLI, the demo, drift remediation and (next) the API
server call these functions and nothing below them.

Every verb takes a :class:`Context` (who acts, the resolved settings, the environments it loads)
and returns a typed view (``control_plane.output.View``); none prints. Authorization (RBAC under
``policies/rbac.rego``, and the verified-identity rule of staging/prod tiers) and the audit entry
happen here, in one way, through :func:`Context.authorize`.

Modules: ``context`` (Context), ``release`` (start/status/promote/abort/resume/rollback/list/history;
its views and progress hooks in ``release_views``), ``models`` (register/show/list/sign/verify/export/
optimize/validate; ``model_overview`` for show), ``approvals``, ``audit``, ``pipelines``, ``pii``,
``infra`` (infra and blueprint verbs), ``operations`` (local environment, traffic, identity, gpu,
sample), ``manifests`` (kserve render/validate), ``monitoring`` (drift, events, replay, metrics).
docs/architecture.md has the table of each verb's home.
"""

from control_plane.monitor import retrain_hook
from control_plane.services.context import Context

# The composition root of in-process event subscriptions: registrations made through the service
# layer check the retrain triggers (the registry emits model.registered and knows no subscriber).
retrain_hook.subscribe()

__all__ = ["Context"]
