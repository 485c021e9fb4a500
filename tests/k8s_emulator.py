"""A Kubernetes API server emulator for tests: ``kmock``'s KubernetesEmulator on a loopback port, in
a background thread, so that the official (synchronous) ``kubernetes`` client talks to it over HTTP
through an ordinary kubeconfig.

kmock stores objects and merges patches; this module adds what our drivers rely on from a real API
server:

- ``metadata.uid``, ``resourceVersion``, ``creationTimestamp`` and ``generation`` (bumped only when
  ``spec`` changes, never by the ``status`` subresource), and optimistic concurrency (409 when a
  write carries a stale ``resourceVersion``);
- ``status`` ignored on create and on main-resource writes, and only ``status`` taken from writes
  to the ``/status`` subresource;
- CRDs registered from the real CRD files (discovery, 404 for resources that are not installed)
  and server-side validation of every write against the CRD's ``openAPIV3Schema`` (422 Invalid);
- failures injected on demand (``fail_next``) to test error handling.

Use it (any test package)::

    from tests.k8s_emulator import KubernetesApi, crd_file

    with KubernetesApi(crds=[crd_file("serving.kserve.io_inferenceservices.yaml")]) as api:
        kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig")
        client = kubernetes.config.new_client_from_config(str(kubeconfig))
        ...
        api.object("serving.kserve.io/v1beta1/inferenceservices", "ns", "name")  # a dict or None
        api.set_status("batch/v1/jobs", "ns", "build", {"succeeded": 1})  # play a controller
        api.fail_next(503, "ServiceUnavailable", "etcd down", method="POST")  # inject a failure

Built-in resources (e.g. ``batch/v1/jobs``, ``v1/pods``) are registered with ``builtins=[...]``;
they get the same metadata handling but no schema validation.
"""

from __future__ import annotations

import asyncio
import copy
import datetime
import itertools
import os
import threading
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp.web
import attrs
import jsonpatch
import yaml
from jsonschema import Draft7Validator
from kmock import KubernetesEmulator, KubernetesError, ResourceInfo, Response, Server, action, resource

REPO = Path(__file__).resolve().parents[1]


def crds_dir() -> Path:
    """The CRD folder: ``$KSERVE_CRDS_DIR``, else ``<repo>/../shared/crds`` (never copied into the repo)."""
    raw = os.environ.get("KSERVE_CRDS_DIR")
    return Path(raw).expanduser() if raw else REPO.parent / "shared" / "crds"


def crd_file(name: str) -> Path:
    return crds_dir() / name


def have_crds(*names: str) -> bool:
    return all(crd_file(n).is_file() for n in names)


@attrs.frozen
class _Crd:
    group: str
    plural: str
    kind: str
    namespaced: bool
    versions: dict[str, Draft7Validator | None]  # served version -> schema validator
    subresources: frozenset[str]


def _load_crd(path: Path) -> _Crd:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with path.open(encoding="utf-8") as fh:
        doc = yaml.load(fh, Loader=loader)  # noqa: S506 - a safe loader
    spec = doc["spec"]
    versions: dict[str, Draft7Validator | None] = {}
    subresources: set[str] = set()
    for v in spec["versions"]:
        if v.get("served"):
            schema = (v.get("schema") or {}).get("openAPIV3Schema")
            versions[v["name"]] = Draft7Validator(schema) if schema else None
            subresources |= set((v.get("subresources") or {}).keys())
    return _Crd(
        group=spec["group"],
        plural=spec["names"]["plural"],
        kind=spec["names"]["kind"],
        namespaced=spec["scope"] == "Namespaced",
        versions=versions,
        subresources=frozenset(subresources),
    )


_REASONS = {
    "Not Found": "NotFound",
    "Object Not Found": "NotFound",
    "Resource Not Found": "NotFound",
    "Endpoint Not Found": "NotFound",
    "Object Already Exists": "AlreadyExists",
}


@attrs.define(kw_only=True)
class ApiServerEmulator(KubernetesEmulator):
    """kmock's emulator with the API-server behaviour listed in the module docstring."""

    _schemas: dict[tuple[str, str, str], Draft7Validator | None] = attrs.field(factory=dict, init=False)
    _status_subresource: set[tuple[str, str, str]] = attrs.field(factory=set, init=False)
    _write_lock: asyncio.Lock = attrs.field(factory=asyncio.Lock, init=False)
    _rv: Iterator[int] = attrs.field(factory=lambda: itertools.count(1000), init=False)
    _failures: list[tuple[str | None, KubernetesError]] = attrs.field(factory=list, init=False)

    def install_crd(self, crd: _Crd) -> None:
        for version, validator in crd.versions.items():
            key = (crd.group, version, crd.plural)
            self._schemas[key] = validator
            if "status" in crd.subresources:
                self._status_subresource.add(key)
            self.resources[resource(crd.group, version, crd.plural)] = ResourceInfo(
                kind=crd.kind,
                namespaced=crd.namespaced,
                verbs={"get", "list", "watch", "create", "update", "patch", "delete"},
                subresources=set(crd.subresources),
            )

    def install_builtin(self, ref: str, kind: str, *, namespaced: bool = True) -> None:
        res = resource(ref)
        key = (res.group or "", str(res.version), str(res.plural))
        self._schemas[key] = None
        self._status_subresource.add(key)
        self.resources[res] = ResourceInfo(
            kind=kind,
            namespaced=namespaced,
            verbs={"get", "list", "watch", "create", "update", "patch", "delete"},
            subresources={"status"},
        )

    def fail_next(self, method: str | None, error: KubernetesError) -> None:
        self._failures.append((method.upper() if method else None, error))

    def _now(self) -> str:
        return datetime.datetime.now(tz=datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def _invalid(self, kind: str, name: str, errors: list[str]) -> KubernetesError:
        return KubernetesError(
            status=422,
            reason="Invalid",
            message=f'{kind} "{name}" is invalid: ' + "; ".join(errors[:5]),
            details={"name": name, "kind": kind, "causes": [{"message": e} for e in errors[:20]]},
        )

    def _validate(self, key: tuple[str, str, str], obj: Mapping[str, Any]) -> None:
        validator = self._schemas.get(key)
        if validator is None:
            return
        errors = [
            ".".join(str(p) for p in e.absolute_path) + f": {e.message}" for e in validator.iter_errors(obj)
        ]
        if errors:
            raise self._invalid(str(obj.get("kind")), str((obj.get("metadata") or {}).get("name")), errors)

    async def _handle(self, request: Any) -> aiohttp.web.StreamResponse:
        if self._failures:
            method, error = self._failures[0]
            if method is None or method == str(request.method.value).upper():
                self._failures.pop(0)
                raise error
        res = request.resource
        if res is not None and request.action is None and request.name and str(request.method.value) == "PUT":
            # kmock knows PATCH only; a PUT (replace) is an update with the whole object.
            request = self._replace_data(request, request.data, action=action.UPDATE)
        if res is None or request.action is None:
            return await super()._handle(request)
        key = (res.group or "", str(res.version), str(res.plural))
        if key not in self._schemas:
            from kmock import KubernetesResourceNotFoundError

            # A real API server answers 404 for a resource whose CRD is not installed.
            raise KubernetesResourceNotFoundError(
                message=f"the server could not find the requested resource ({res.plural}.{res.group})"
            )
        async with self._write_lock:
            if request.action == action.CREATE:
                request = self._replace_data(request, self._on_create(key, request))
            elif request.action == action.UPDATE and request.name is not None:
                request = self._replace_data(request, self._on_update(key, request))
            return await super()._handle(request)

    async def _render_error(self, exc: Exception) -> aiohttp.web.StreamResponse:
        # Speak the API server's reasons (NotFound, AlreadyExists), which clients switch on.
        if isinstance(exc, KubernetesError) and exc.reason in _REASONS:
            exc = attrs.evolve(exc, reason=_REASONS[exc.reason])
        return await super()._render_error(exc)

    async def _serve_create(self, request: Any) -> Any:
        # The API server answers a create with 201 Created (the client deserializes only that).
        return Response(status=201, payload=await super()._serve_create(request))

    def _replace_data(self, request: Any, data: Any, **changes: Any) -> Any:
        # kmock matches reactions by the identity of the recorded request: record the new one.
        new = attrs.evolve(request, data=data, **changes)
        for i, recorded in enumerate(self._requests):
            if recorded is request:
                self._requests[i] = new
        return new

    def _on_create(self, key: tuple[str, str, str], request: Any) -> dict[str, Any]:
        obj = copy.deepcopy(request.data) if isinstance(request.data, dict) else {}
        meta = obj.setdefault("metadata", {})
        if request.namespace and not meta.get("namespace"):
            meta["namespace"] = request.namespace
        if not meta.get("name"):
            raise self._invalid(str(obj.get("kind")), "", ["metadata.name: Required value"])
        meta.update(
            uid=str(uuid.uuid4()),
            resourceVersion=str(next(self._rv)),
            generation=1,
            creationTimestamp=self._now(),
        )
        if key in self._status_subresource:
            obj.pop("status", None)  # status is the controller's, written through /status only
        self._validate(key, obj)
        return obj

    def _on_update(self, key: tuple[str, str, str], request: Any) -> list[dict[str, Any]]:
        res = request.resource
        stored = dict(self.objects.items()).get((res, request.namespace, request.name))
        if stored is None or stored.deleted:
            from kmock import KubernetesObjectNotFoundError

            raise KubernetesObjectNotFoundError(
                message=f'{res.plural}.{res.group} "{request.name}" not found',
                details={"name": request.name, "kind": res.plural},
            )
        current = copy.deepcopy(stored.raw)
        body = request.data
        if request.method.value.upper() == "PUT":
            proposed = copy.deepcopy(body)
        elif isinstance(body, list):
            proposed = jsonpatch.apply_patch(current, body, in_place=False)
        elif isinstance(body, dict):
            from kmock._internal.dicts import merge_patch_dict

            proposed = dict(merge_patch_dict(current, body))
        else:
            raise KubernetesError(status=415, reason="UnsupportedMediaType", message="unsupported patch body")

        sent_rv = (proposed.get("metadata") or {}).get("resourceVersion")
        cur_meta = current["metadata"]
        if sent_rv and sent_rv != cur_meta["resourceVersion"]:
            raise KubernetesError(
                status=409,
                reason="Conflict",
                message=f'Operation cannot be fulfilled on {res.plural}.{res.group} "{request.name}": '
                "the object has been modified; please apply your changes to the latest version and try again",
            )
        if request.subresource == "status":
            new = copy.deepcopy(current)
            new["status"] = proposed.get("status")
            if new["status"] is None:
                new.pop("status")
        else:
            new = proposed
            new_meta = new.setdefault("metadata", {})
            for field in ("uid", "creationTimestamp", "name", "namespace"):
                new_meta[field] = cur_meta.get(field)
            if key in self._status_subresource:
                if "status" in current:
                    new["status"] = current["status"]
                else:
                    new.pop("status", None)
            generation = int(cur_meta.get("generation", 1))
            new_meta["generation"] = generation + (1 if new.get("spec") != current.get("spec") else 0)
        new["metadata"]["resourceVersion"] = str(next(self._rv))
        self._validate(key, new)
        return [{"op": "replace", "path": "", "value": new}]


class KubernetesApi:
    """Runs an :class:`ApiServerEmulator` on 127.0.0.1 (a free port) in a background thread."""

    def __init__(
        self,
        *,
        crds: Iterable[Path] = (),
        builtins: Iterable[tuple[str, str]] = (("v1/namespaces", "Namespace"),),
    ) -> None:
        self._crds = [_load_crd(p) for p in crds]
        self._builtins = list(builtins)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self.handler: ApiServerEmulator | None = None
        self.url = ""

    # -- lifecycle -------------------------------------------------------------------------
    def __enter__(self) -> KubernetesApi:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="k8s-emulator", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout=30) or self._error is not None:
            raise RuntimeError(f"the Kubernetes API emulator did not start: {self._error!r}")

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout=15)

    def _run(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        try:
            async with ApiServerEmulator() as handler, Server(handler, host="127.0.0.1") as server:
                for crd in self._crds:
                    handler.install_crd(crd)
                for ref, kind in self._builtins:
                    handler.install_builtin(ref, kind, namespaced=not ref.endswith("namespaces"))
                self.handler = handler
                self.url = str(server.url).rstrip("/")
                self._ready.set()
                await self._stop.wait()
        except BaseException as exc:  # surfaced by start()
            self._error = exc
            self._ready.set()

    # -- helpers for tests ---------------------------------------------------------------------
    def write_kubeconfig(self, path: Path, *, namespace: str = "default") -> Path:
        """A kubeconfig with one context pointing at the emulator (plain HTTP, a dummy token)."""
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "emulator", "cluster": {"server": self.url}}],
            "users": [{"name": "tester", "user": {"token": "emulator-token"}}],
            "contexts": [
                {
                    "name": "emulator",
                    "context": {"cluster": "emulator", "user": "tester", "namespace": namespace},
                }
            ],
            "current-context": "emulator",
        }
        path.write_text(yaml.safe_dump(config))
        path.chmod(0o600)
        return path

    def _call(self, fn: Any) -> Any:
        assert self._loop is not None

        async def _run() -> Any:
            return fn()

        return asyncio.run_coroutine_threadsafe(_run(), self._loop).result(timeout=10)

    def object(self, ref: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        """A deep copy of the stored object (``None`` if absent or deleted)."""
        handler = self.handler
        assert handler is not None

        def _get() -> dict[str, Any] | None:
            obj = dict(handler.objects.items()).get((resource(ref), namespace, name))
            return None if obj is None or obj.deleted else copy.deepcopy(obj.raw)

        result: dict[str, Any] | None = self._call(_get)
        return result

    def fail_next(self, status: int, reason: str, message: str, *, method: str | None = None) -> None:
        """Make the next request (of ``method``, if given) fail with this Kubernetes Status."""
        handler = self.handler
        assert handler is not None
        self._call(
            lambda: handler.fail_next(method, KubernetesError(status=status, reason=reason, message=message))
        )

    def set_status(
        self, ref: str, namespace: str | None, name: str, status: dict[str, Any]
    ) -> dict[str, Any]:
        """Write ``status`` through the ``/status`` subresource over HTTP, as a controller would."""
        import json
        import urllib.request

        res = resource(ref)
        base = f"/api/{res.version}" if not res.group else f"/apis/{res.group}/{res.version}"
        scope = f"/namespaces/{namespace}" if namespace else ""
        req = urllib.request.Request(  # noqa: S310 - the loopback emulator
            f"{self.url}{base}{scope}/{res.plural}/{name}/status",
            data=json.dumps({"status": status}).encode(),
            method="PATCH",
            headers={"Content-Type": "application/merge-patch+json"},
        )
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310
            out: dict[str, Any] = json.loads(resp.read())
        return out

    @property
    def requests(self) -> list[Any]:
        assert self.handler is not None
        return list(self.handler._requests)


@contextmanager
def kubernetes_api(*crd_names: str) -> Iterator[KubernetesApi]:
    """``KubernetesApi`` with the named CRD files from :func:`crds_dir` installed."""
    with KubernetesApi(crds=[crd_file(n) for n in crd_names]) as api:
        yield api
