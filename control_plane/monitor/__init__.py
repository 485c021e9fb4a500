"""Monitoring: drift detection with remediation, Prometheus metrics, retrain triggers.

- ``drift.compare(reference, current, config) -> DriftReport`` and ``drift.load_config``;
- ``request_log.read_requests(service)``: the live request log of a deployed service;
- ``remediation.act(report, ...)``: audit, emit and remediate (alert / retrain / rollback);
- ``metrics``: metrics derived from the event log, ``exporter.serve`` for ``/metrics``;
- ``retrain.check_retrain_triggers(new_version)``: called by the registry after registration.
"""
