"""KServe on Kubernetes: InferenceService and HTTPRoute rendering, CRD validation, the Kubernetes
driver (``drivers.base.Driver``) and the Prometheus analysis source for clusters.

Public surface (everything else is internal):

- ``render_inference_service(model, env, *, service, colour, options, canary_traffic_percent)``
- ``render_http_route(*, service, weights, options)``
- ``crds.validate(obj)`` / ``crds.validation_errors(obj)``
- ``KubernetesDriver(env, *, options, kubeconfig, context, api_client, prometheus_url)``
- ``driver_for_environment(env)``: the driver configured from ``MLCTL_*`` variables
- ``PrometheusAnalysis(metrics_source).sample(window)``, ``prometheus.measure(source, since)``
"""

from control_plane.kserve import crds
from control_plane.kserve.driver import KubernetesDriver, driver_for_environment
from control_plane.kserve.httproute import render_http_route
from control_plane.kserve.model import Colour, DeploymentMode, ModelFormat, ServedModel, ServingOptions
from control_plane.kserve.prometheus import PrometheusAnalysis, PrometheusApi, PromQueries, Sample
from control_plane.kserve.render import render_inference_service

__all__ = [
    "Colour",
    "DeploymentMode",
    "KubernetesDriver",
    "ModelFormat",
    "PromQueries",
    "PrometheusAnalysis",
    "PrometheusApi",
    "Sample",
    "ServedModel",
    "ServingOptions",
    "crds",
    "driver_for_environment",
    "render_http_route",
    "render_inference_service",
]
