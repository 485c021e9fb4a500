"""The continuous-training pipeline in the KFP v2 SDK: one definition, two engines.

Lightweight Python components (``install_kfp_package=False``: nothing is pip-installed at run
time, so no step needs internet egress); each body imports ``control_plane.pipelines.steps`` from
the step image and calls one step function. Data moves as KFP artifacts (``Dataset``, ``Model``):
the local runner keeps them on disk, a cluster in the pipeline root (the environment's bucket).

The training task carries the blueprint's training pool: ``nvidia.com/gpu`` accelerator, the pool's
node selector and its tolerations (``kfp-kubernetes``); the local runner ignores them (with a
warning, see ``engines``).
"""

# No `from __future__ import annotations`: KFP reads the component signatures' real types.
import re
from typing import TYPE_CHECKING, Any

from kfp import dsl
from kfp.dsl import Dataset, Input, Model, Output

from control_plane.errors import MlctlError

if TYPE_CHECKING:
    from blueprints.schema import Environment, NodePool
    from control_plane.pipelines.config import PipelineConfig

PIPELINE_NAME = "mlctl-continuous-training"
# Local runs execute in this interpreter; the name only has to read as a Python image to KFP.
LOCAL_IMAGE = "local.invalid/mlctl-pipeline-python@sha256:" + "0" * 64
IMAGE_DIGEST = re.compile(r"^[a-z0-9.-]+(:\d+)?(/[a-z0-9._-]+)+(:[\w.-]+)?@sha256:[0-9a-f]{64}$")
EGRESS_LABEL = ("mlops.sovereign.ae/egress", "environment-only")


# ---- component bodies (run inside the step image; imports stay inside) ------------------------


def fetch_op(dataset: str, context: str, data: Output[Dataset]) -> str:
    from control_plane.pipelines import steps  # lazy: a KFP component body runs on its own in the step image

    return steps.component("fetch", context, lambda ctx: steps.fetch_dataset(dataset, data.path, ctx.config))


def data_tests_op(data: Input[Dataset], fetched: str, features: str, context: str) -> str:
    import json
    import os

    from control_plane.pipelines import steps  # lazy: a KFP component body runs on its own in the step image

    path = os.path.join(data.path, json.loads(fetched)["file"])
    return steps.component("data-tests", context,
                           lambda ctx: steps.run_data_tests(path, ctx.config, features or None))


def train_op(data: Input[Dataset], item: dict, context: str, model: Output[Model]) -> str:
    import glob
    import json
    import os

    from control_plane.pipelines import steps  # lazy: a KFP component body runs on its own in the step image

    # Only the artifact and the loop item cross into the ParallelFor body: KFP 2.17's local runner
    # resolves other upstream parameters inside a loop to the loop item. Parameters travel as a
    # JSON string, because a protobuf Struct would turn every integer into a float.
    path = sorted(glob.glob(os.path.join(data.path, "data.*")))[0]
    params = json.loads(item["params"])
    return steps.component("train", context,
                           lambda ctx: steps.train_candidate(path, params, model.path, ctx.config),
                           key=f"train-{item['index']}")


def select_op(models: Input[list[Model]], context: str, best: Output[Model]) -> str:
    from control_plane.pipelines import steps  # lazy: a KFP component body runs on its own in the step image

    def run(ctx: Any) -> Any:
        chosen = steps.select_best([m.path for m in models], ctx.config)
        steps.copy_model(models[chosen["best"]].path, best.path)
        return chosen

    return steps.component("select", context, run)


def evaluate_op(model: Input[Model], context: str) -> str:
    from control_plane.pipelines import steps  # lazy: a KFP component body runs on its own in the step image

    return steps.component("evaluate", context,
                           lambda ctx: steps.evaluate_candidate(model.path, ctx.config, ctx.run_id))


def register_op(model: Input[Model], fetched: str, tested: str, evaluation: str, context: str) -> str:
    import json

    from control_plane.pipelines import steps  # lazy: a KFP component body runs on its own in the step image

    return steps.component("register", context, lambda ctx: steps.register_candidate(
        model.path, ctx.config, run_id=ctx.run_id, dataset=json.loads(fetched), data_tests=json.loads(tested),
        evaluation=json.loads(evaluation), code_commit=ctx.code_commit, engine=ctx.engine))


# ---- the training pool -----------------------------------------------------------------------


def training_pool(env: "Environment") -> "NodePool | None":
    """The GPU pool labelled ``workload: training``; else one labelled for builds; else the first."""
    pools = env.cluster.gpu_pools
    for wanted in ("training", "tensorrt-build"):
        for pool in pools:
            if pool.labels.get("workload") == wanted:
                return pool
    return pools[0] if pools else None


def node_selector(env: "Environment", pool: "NodePool") -> dict[str, str]:
    key = "kubernetes.azure.com/agentpool" if str(env.cloud) == "azure" else "eks.amazonaws.com/nodegroup"
    return {key: pool.name, **pool.labels}


def check_image(image: str, env: "Environment | None") -> str:
    """Pinned by digest and pulled from the environment's own in-region registry (no public pulls)."""
    if not IMAGE_DIGEST.match(image):
        raise MlctlError(f"step image {image!r} is not pinned by digest",
                         hint="use REGISTRY/REPO[:TAG]@sha256:<64 hex> from the environment's registry",
                         exit_code=2)
    if env is not None and image != LOCAL_IMAGE:
        host = image.split("/", 1)[0]
        ok = (host.endswith(f".dkr.ecr.{env.region}.amazonaws.com") if str(env.cloud) == "aws"
              else host.endswith(".azurecr.io"))
        if not ok:
            where = f"ECR in {env.region}" if str(env.cloud) == "aws" else "the environment's ACR"
            raise MlctlError(f"step image {image} is not in {env.name}'s registry ({where})",
                             hint="mirror the image into the environment's registry and pin that digest",
                             exit_code=2)
    return image


# ---- the pipeline ----------------------------------------------------------------------------


def build(cfg: "PipelineConfig", *, image: str = LOCAL_IMAGE, env: "Environment | None" = None) -> Any:
    """The KFP pipeline for ``cfg`` with every step on ``image``; ``env`` adds the training pool's
    GPU request, node selector and tolerations (the cluster form)."""
    check_image(image, env)

    def comp(fn: Any) -> Any:
        return dsl.component(fn, base_image=image, install_kfp_package=False)

    fetch_c, tests_c, train_c = comp(fetch_op), comp(data_tests_op), comp(train_op)
    select_c, eval_c, register_c = comp(select_op), comp(evaluate_op), comp(register_op)
    pool = training_pool(env) if env is not None else None
    parallelism = cfg.parallelism

    def place(task: Any, *, gpu: bool) -> None:
        task.set_caching_options(False)  # each run must really train and test what it is given
        task.set_display_name(task.name)
        if env is None:
            return
        from kfp import kubernetes

        kubernetes.add_pod_label(task, *EGRESS_LABEL)
        if gpu and pool is not None and cfg.gpus:
            task.set_accelerator_type("nvidia.com/gpu").set_accelerator_limit(cfg.gpus)
            for key, value in node_selector(env, pool).items():
                kubernetes.add_node_selector(task, label_key=key, label_value=value)
            for t in pool.effective_taints:
                kubernetes.add_toleration(task, key=t.key, operator="Equal", value=t.value, effect=t.effect)

    @dsl.pipeline(name=PIPELINE_NAME, description=f"mlctl continuous training: {cfg.name} -> {cfg.model}")
    def continuous_training(dataset: str, features: str, context: str, grid: list[dict]) -> str:
        fetched = fetch_c(dataset=dataset, context=context)
        place(fetched, gpu=False)
        tested = tests_c(data=fetched.outputs["data"], fetched=fetched.outputs["Output"], features=features,
                         context=context)
        place(tested, gpu=False)
        with dsl.ParallelFor(items=grid, parallelism=parallelism) as item:
            trained = train_c(data=fetched.outputs["data"], item=item, context=context).after(tested)
            place(trained, gpu=True)
        chosen = select_c(models=dsl.Collected(trained.outputs["model"]), context=context)
        place(chosen, gpu=False)
        judged = eval_c(model=chosen.outputs["best"], context=context)
        place(judged, gpu=False)
        registered = register_c(model=chosen.outputs["best"], fetched=fetched.outputs["Output"],
                                tested=tested.outputs["Output"], evaluation=judged.outputs["Output"],
                                context=context)
        place(registered, gpu=False)
        return registered.outputs["Output"]

    return continuous_training


def grid_items(cfg: "PipelineConfig") -> list[dict[str, Any]]:
    import json

    return [{"index": str(i), "params": json.dumps(p, sort_keys=True)} for i, p in enumerate(cfg.candidates())]
