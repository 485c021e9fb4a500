"""KServe manifests without a cluster: render a model version's InferenceService (and HTTPRoute),
validate manifests against the CRDs. Reads only: nothing is applied, so no role is needed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from rich.text import Text

from blueprints import load_environment
from control_plane.errors import MlctlError
from control_plane.kserve import crds
from control_plane.kserve.httproute import render_http_route
from control_plane.kserve.model import ServedModel, ServingOptions, parse_mode
from control_plane.kserve.render import render_inference_service
from control_plane.output import table
from control_plane.services.context import Context

__all__ = ["ManifestCheckView", "ManifestsView", "kserve_render", "kserve_validate"]

Note = Callable[[str], None]


def _quiet(message: str) -> None:
    return None


def _plain(text: str) -> Any:
    return Text(text)


def _settings_of(obj: dict[str, Any]) -> str:
    """The few fields a reviewer checks first, on one line."""
    meta, spec = obj.get("metadata") or {}, obj.get("spec") or {}
    if obj.get("kind") == "InferenceService":
        pred = spec.get("predictor") or {}
        model = pred.get("model") or {}
        gpus = ((model.get("resources") or {}).get("limits") or {}).get("nvidia.com/gpu", "0")
        parts = [
            f"mode {(meta.get('annotations') or {}).get('serving.kserve.io/deploymentMode', '-')}",
            f"format {(model.get('modelFormat') or {}).get('name', '-')}",
            f"runtime {model.get('runtime', '-')}",
            f"storage {model.get('storageUri', '-')}",
            f"replicas {pred.get('minReplicas', '-')}-{pred.get('maxReplicas', '-')}",
            f"gpus {gpus}",
        ]
        if pred.get("canaryTrafficPercent") is not None:
            parts.append(f"canary {pred['canaryTrafficPercent']}%")
        return ", ".join(parts)
    if obj.get("kind") == "HTTPRoute":
        rules = spec.get("rules") or []
        # the rule without header matches carries the users' weights (the others pin one colour)
        default: dict[str, Any] = next((r for r in reversed(rules) if not any(m.get("headers") for m in r.get("matches") or [])), {})
        weights = " ".join(f"{b.get('name')}={b.get('weight')}" for b in default.get("backendRefs") or [])
        return ", ".join([f"hostnames {','.join(spec.get('hostnames') or []) or '-'}", f"weights {weights or '-'}"])
    return ""


@dataclass(frozen=True)
class ManifestsView:
    """Rendered objects: a table (kind, name, namespace, key settings) for people; the objects
    under ``-o json``; the manifests themselves with :meth:`as_yaml` (``-o yaml``)."""

    objects: Sequence[dict[str, Any]]

    def as_json(self) -> Any:
        return list(self.objects)

    def as_yaml(self) -> str:
        return yaml.safe_dump_all(list(self.objects), sort_keys=False, width=1_000)

    def renderables(self) -> Iterable[Any]:
        yield table("Rendered objects (-o yaml for the manifests)", ["kind", "name", "namespace", "settings"],
                    [(o.get("kind"), (o.get("metadata") or {}).get("name"), (o.get("metadata") or {}).get("namespace"),
                      _settings_of(o)) for o in self.objects])


def _weights(raw: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for part in raw.split(","):
        colour, sep, value = part.partition("=")
        if not sep or not value.strip().isdigit():
            raise MlctlError(f"--weights {raw!r} is not COLOUR=PERCENT,...", hint="e.g. --weights blue=90,green=10")
        out[colour.strip()] = int(value)
    return out


def kserve_render(ctx: Context, served: ServedModel, *, blueprint: Path, env: str | None = None,
                  service: str | None = None, mode: str = "Standard", colour: str = "green",
                  namespace: str = ServingOptions.namespace, gpu_pool: str | None = None, gpus: int = 1,
                  canary_percent: int | None = None, weights: str | None = None, hostname: str | None = None,
                  verifier_image: str | None = None, note: Note = _quiet) -> ManifestsView:
    """The InferenceService (and, with ``weights``, the HTTPRoute) for a model version, validated
    against the CRDs when they are available (a note says so when they are not)."""
    environment = load_environment(blueprint, env)
    opts = ServingOptions(namespace=namespace, mode=parse_mode(mode), gpu_pool=gpu_pool, gpus=gpus,
                          hostnames=(hostname,) if hostname else ())
    if verifier_image:
        opts = dataclasses.replace(opts, verifier_image=verifier_image)
    svc = service or served.name
    objects = [render_inference_service(served, environment, service=svc, colour=colour, options=opts,
                                        canary_traffic_percent=canary_percent)]
    if weights:
        objects.append(render_http_route(service=svc, weights=_weights(weights), options=opts))
    try:
        for obj in objects:
            crds.validate(obj)
    except crds.CrdsMissing as exc:
        note(f"[yellow]note:[/] not validated against the CRDs ({exc.message}); {exc.hint}")
    return ManifestsView(objects)


@dataclass(frozen=True)
class ManifestCheckView:
    objects: Sequence[dict[str, Any]]  # file, object, errors

    def as_json(self) -> Any:
        return {"valid": not self._bad, "objects": list(self.objects)}

    @property
    def _bad(self) -> list[dict[str, Any]]:
        return [r for r in self.objects if r["errors"]]

    def renderables(self) -> Iterator[Any]:
        for r in self.objects:
            mark = "[red]invalid[/]" if r["errors"] else "[green]valid[/]"
            yield f"{mark} {r['file']}: {r['object']}"
            for err in r["errors"]:
                yield _plain(f"    {err}")

    def failure(self) -> MlctlError | None:
        if not self._bad:
            return None
        return MlctlError(f"{len(self._bad)} of {len(self.objects)} object(s) do not match their CRD schema",
                          hint="fix the fields listed above")


def kserve_validate(ctx: Context, files: Sequence[Path]) -> ManifestCheckView:
    """Validate manifests against the KServe / Gateway API CRD schemas (strict: unknown fields fail)."""
    results: list[dict[str, Any]] = []
    for path in files:
        try:
            docs = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]
        except (OSError, yaml.YAMLError) as exc:
            raise MlctlError(f"{path}: cannot read YAML ({exc})", hint="pass readable YAML manifest files") from None
        for doc in docs:
            if not isinstance(doc, dict):
                raise MlctlError(f"{path}: a YAML document is not an object", hint="one manifest per document")
            name = f"{doc.get('kind')}/{(doc.get('metadata') or {}).get('name')}"
            results.append({"file": str(path), "object": name, "errors": crds.validation_errors(doc)})
    return ManifestCheckView(results)
