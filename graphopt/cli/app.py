"""``graphopt`` commands: click options → library call → render.

Errors caused by input end with one sentence on stderr and exit code 2;
anything else is a bug in graphopt and ends with exit code 1 and a one-line
summary (the traceback with ``--debug``).
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import onnx

from .. import __version__
from ..analysis import graph_stats
from ..api import optimize as optimize_model
from ..backends import BACKENDS, Backend, get_backend
from ..backends.tensorrt import TensorRTBackend, TensorRTOptions
from ..deploy import deploy
from ..errors import GraphoptError, RuntimeRunError, ShapeSpecError
from ..graph import infer_tensor_info
from ..model_io import OutputStage, external_data_files, load_model
from ..native_output import capture_native_output
from ..options import VerifyOptions
from ..passes import DEFAULT_PASSES, PASSES, select_passes, with_fp16, with_ground_plane
from ..shapes import dynamic_inputs_without_shape, parse_input_shapes, resolve_input_shapes
from ..verify import check_input_names, check_input_sizes, concrete_input_shapes, graph_inputs
from ..workloads import load_config
from .ablate import ablate
from .detect import detect, evaluate
from .feedback import Feedback
from .outputs import OutputPlan, plan_outputs
from .profile import profile_ops

__all__ = ["cli", "main"]

EXIT_BAD_INPUT = 2
EXIT_INTERNAL = 1
COMMANDS_GROUP = "graphopt.commands"


def _plugin_commands() -> dict[str, importlib.metadata.EntryPoint]:
    return {entry.name: entry for entry in importlib.metadata.entry_points(group=COMMANDS_GROUP)}


def _load_command(name: str) -> click.Command | None:
    entry = _plugin_commands()[name]
    try:
        command = entry.load()
    except Exception as error:
        logging.getLogger(__name__).warning("command %s (%s) left out: %s", name, entry.value, error)
        return None
    return command if isinstance(command, click.Command) else None


class _Group(click.Group):
    """Turns graphopt's errors into one sentence and an exit code, never a traceback.

    Besides its own commands it offers those that workloads and plugins
    register under the ``graphopt.commands`` entry-point group (the person
    detector's ``detect``, ``evaluate`` and ``bands``), loaded only when
    listed or called, so that the core commands import no workload.
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *_plugin_commands()})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is None and cmd_name in _plugin_commands():
            command = _load_command(cmd_name)
        return command

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except GraphoptError as error:
            click.echo(f"graphopt: error: {error}", err=True)
            ctx.exit(EXIT_BAD_INPUT)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except KeyboardInterrupt:
            click.echo("graphopt: interrupted", err=True)
            ctx.exit(130)
        except Exception as error:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            click.echo(
                f"graphopt: internal error: {type(error).__name__}: {error} (rerun with --debug for the traceback)",
                err=True,
            )
            ctx.exit(EXIT_INTERNAL)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="graphopt")
@click.option("--debug", is_flag=True, help="Show tracebacks of internal errors and debug logs.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Graph-optimization toolkit for deploying CNN detectors with ONNX and TensorRT."""
    ctx.obj = {"debug": debug}
    logging.basicConfig(level=logging.DEBUG if debug else logging.ERROR, format="%(levelname)s %(name)s: %(message)s")


@contextlib.contextmanager
def _naming_the_model(model_path: Path) -> Iterator[None]:
    """Prefixes shape and runtime errors with the model file, so every message names the file it is about."""
    try:
        yield
    except (ShapeSpecError, RuntimeRunError) as error:
        if str(error).startswith(str(model_path)):
            raise
        raise type(error)(f"{model_path}: {error}") from None


def _split_names(values: tuple[str, ...]) -> list[str]:
    return [name.strip() for value in values for name in value.split(",") if name.strip()]


@cli.command()
@click.argument("model_path", metavar="MODEL", type=click.Path(dir_okay=True, path_type=Path))
@click.argument("output_arg", metavar="[OUTPUT]", required=False, type=click.Path(path_type=Path))
@click.option("-o", "--output", "--output-dir", "output_dir", type=click.Path(path_type=Path),
              help="OUT.onnx: the optimized model, with OUT.report.json and OUT.report.md beside it; "
              "or a directory (any path not ending in .onnx) for MODEL's name .onnx and report.json/md.")
@click.option("-q", "--quiet", is_flag=True, help="Print nothing but errors.")
@click.option("-v", "--verbose", count=True, help="Show progress of every step, and info logs (-vv: debug).")
@click.option("--passes", "passes", multiple=True, metavar="NAMES",
              help=f"Passes to run, in order, comma-separated (default: {','.join(DEFAULT_PASSES)}).")
@click.option("--skip", multiple=True, metavar="NAMES", help="Passes to leave out, comma-separated.")
@click.option("--input-shape", "--input-shapes", "input_shapes", multiple=True, metavar="[NAME:]DIMS",
              help="Concrete shape of a graph input: input:1x3x480x640, input:1,3,480,640 or input:[1,3,480,640]; "
              "NAME: may be left out for a model with one input (repeatable). Inputs without one stay dynamic.")
@click.option("--verify/--no-verify", default=False,
              help="Check every pass numerically against onnxruntime; roll back one that breaks tolerance.")
@click.option("--rtol", default=VerifyOptions.rtol, show_default=True, help="Relative tolerance of --verify.")
@click.option("--atol", default=VerifyOptions.atol, show_default=True, help="Absolute tolerance of --verify.")
@click.option("--keep-going", is_flag=True, help="Continue without a pass that was rolled back.")
@click.option("--backend", type=click.Choice(sorted(BACKENDS)), default="onnxruntime", show_default=True,
              help="Final stage that builds the deployable artifact.")
@click.option("--benchmark/--no-benchmark", default=True, show_default=True,
              help="Time the input and the optimized model with the backend on the same random inputs.")
@click.option("--warmup", default=5, show_default=True, type=click.IntRange(0), help="Untimed runs before timing.")
@click.option("--repeats", default=30, show_default=True, type=click.IntRange(1), help="Timed runs.")
@click.option("--report-json", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the JSON report here (it is always written to OUTDIR/report.json).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Detector description (TOML) for the detector passes: with it, fuse_host_stages turns the "
              "network into the whole detector (frame in, detections out).")
@click.option("--fp16", is_flag=True,
              help="Append nms_on_logits and convert_to_fp16: float16 throughout, NMS on log-odds.")
@click.option("--keep-fp32", multiple=True, metavar="NAMES",
              help="Nodes the float16 conversion keeps in float32, comma-separated.")
@click.option("--keep-fp32-op", "keep_fp32_ops", multiple=True, metavar="OPS",
              help="Operator types the float16 conversion keeps in float32, comma-separated.")
@click.option("--trt-workspace-mb", default=1024, show_default=True, type=click.IntRange(1),
              help="TensorRT backend: the builder's workspace limit.")
@click.option("--trt-opt-level", default=3, show_default=True, type=click.IntRange(0, 5),
              help="TensorRT backend: builder optimization level (0 fast build … 5 longest kernel search).")
@click.option("--trt-timing-cache", type=click.Path(dir_okay=False, path_type=Path),
              help="TensorRT backend: timing cache file, read before and written after the build "
              "(default: ~/.cache/graphopt/tensorrt-VERSION.timing-cache, shared by every build).")
@click.option("--trt-version", metavar="VERSION",
              help="TensorRT backend: the TensorRT version whose ONNX parser the pre-build check holds the graph to "
              "(default: the installed one, else 10.3, JetPack 6's).")
@click.option("--ground-plane", is_flag=True,
              help="Insert the fixed camera's pass after fuse_host_stages: the network computes only the rows where "
              "objects can be (person detector: ground_plane_slice, needs a complete [camera]; YOLO: crop_rows, "
              "needs crop_rows or a [yolo.camera] in --config).")
@click.option("--ground-plane-margin", type=click.IntRange(0), metavar="ROWS",
              help="Rows added on each side of the band: score-map rows of every scale for the person detector "
              "(default 3), network-input rows for a YOLO model (default the config's crop_margin, 32).")
def optimize(
    model_path: Path,
    output_arg: Path | None,
    output_dir: Path | None,
    quiet: bool,
    verbose: int,
    passes: tuple[str, ...],
    skip: tuple[str, ...],
    input_shapes: tuple[str, ...],
    verify: bool,
    rtol: float,
    atol: float,
    keep_going: bool,
    backend: str,
    benchmark: bool,
    warmup: int,
    repeats: int,
    report_json: Path | None,
    config_path: Path | None,
    fp16: bool,
    keep_fp32: tuple[str, ...],
    keep_fp32_ops: tuple[str, ...],
    ground_plane: bool,
    ground_plane_margin: int | None,
    trt_workspace_mb: int,
    trt_opt_level: int,
    trt_timing_cache: Path | None,
    trt_version: str | None,
) -> None:
    """Optimize MODEL and write it, with a per-pass report, to OUTPUT (a file.onnx or a directory)."""
    if ground_plane and config_path is None:
        raise click.UsageError("--ground-plane needs --config: the detector and its calibrated camera")
    feedback = Feedback.configure(quiet=quiet, verbose=verbose)
    with _naming_the_model(model_path):
        plan = plan_outputs(model_path, output_dir, output_arg)
        for text in input_shapes:
            parse_input_shapes(text)  # the syntax is checked before any work
        config = None if config_path is None else load_config(config_path)
        # Names are checked before any work, so that a typo costs nothing.
        chosen = _split_names(passes) or None
        if ground_plane:
            assert config is not None
            chosen = [name for name in with_ground_plane(chosen, config.ground_plane_pass) if isinstance(name, str)]
        if fp16:
            chosen = [name for name in with_fp16(chosen) if isinstance(name, str)]
        pass_list = select_passes(chosen, skip=_split_names(skip))
        # TensorRT is looked for only after the passes: where it is missing, the optimized ONNX is still written.
        target: Backend = TensorRTBackend(options=TensorRTOptions(
            workspace_mb=trt_workspace_mb, optimization_level=trt_opt_level, timing_cache=trt_timing_cache,
            target_version=trt_version,
        )) if backend == TensorRTBackend.name else get_backend(backend)

        feedback.step(f"loading {model_path}")
        model = load_model(model_path)
        shapes = resolve_input_shapes(model, input_shapes)
        protected = {model_path.resolve(), *external_data_files(model, model_path.parent)}
        for out in [*plan.paths([f"{plan.name}.onnx"]), report_json]:
            if out is not None and out.resolve() in protected:
                raise GraphoptError(f"refusing to write {out} over the input model; choose another output path")
        given = dict(shapes)  # the workload's own shapes are filled in by optimize_model, and not pinned
        if config is not None and not shapes:
            shapes = config.network_input_shapes(model)
        check_input_names(model, shapes)
        dynamic = dynamic_inputs_without_shape(model, shapes)
        if verify and dynamic:
            raise ShapeSpecError(f"--verify needs concrete input shapes, and input '{dynamic[0]}' is dynamic; "
                                 f"give it one with --input-shape {dynamic[0]}:DIMS")
        timed = benchmark and not dynamic
        if verify or timed:
            check_input_sizes(concrete_input_shapes(model, shapes), str(model_path))  # before any work

        with capture_native_output() as native:
            optimized, report = optimize_model(
                model,
                _split_names(passes) or None,
                skip=_split_names(skip),
                fp16=fp16,
                ground_plane=ground_plane,
                input_shapes=given,
                verify=VerifyOptions(rtol=rtol, atol=atol) if verify else False,
                keep_going=keep_going,
                detector=config,
                keep_fp32=_split_names(keep_fp32),
                keep_fp32_ops=_split_names(keep_fp32_ops),
                ground_plane_margin=ground_plane_margin,
                latency_repeats=repeats if benchmark else 0,
                instruments=[feedback.instrument(len(pass_list))],
            )
            report.source = str(model_path)
            # A backend that is missing or refuses the graph does not cost the optimization:
            # the optimized ONNX and the report are written, then the run ends with why.
            if timed:
                feedback.step(f"timing the input and the output, interleaved ({warmup} + {repeats} runs each)")
            deployment = deploy(model, optimized, target, name=plan.name, config=config, input_shapes=shapes,
                                benchmark=timed, warmup=warmup, repeats=repeats)
        report.native_output = native.summary()
        artifact, report.backend = deployment.artifact, deployment.result
        if benchmark and dynamic:
            report.backend.latency_skipped = (f"input '{dynamic[0]}' is dynamic and no --input-shape was given "
                                              "for it, so there is no shape to time it at")
        _write_outputs(plan, artifact, report, report_json)
        if not feedback.quiet:
            report.render()
            click.echo(f"wrote {', '.join(report.outputs)}" + (f", {report_json}" if report_json else ""))
        if deployment.error is not None:
            raise deployment.error


def _write_outputs(plan: OutputPlan, artifact: Any, report: Any, report_json: Path | None) -> None:
    """The artifact and both reports, staged and moved in together (nothing half-written is left)."""
    report.backend.artifact = str(plan.directory / artifact.file_name)
    report.outputs = [str(p) for p in plan.paths(artifact.files())]
    with OutputStage(plan.directory) as stage:
        artifact.write(stage)
        stage.write_text(plan.report_json, report.to_json())
        stage.write_text(plan.report_md, report.to_markdown())
        if report_json is not None:
            with OutputStage(report_json.parent) as extra:
                extra.write_text(report_json.name, report.to_json())
                stage.commit()
                extra.commit()
        else:
            stage.commit()


@cli.command("passes")
def list_passes() -> None:
    """List the registered passes (* = in the default pipeline, in order), plugins' included."""
    from ..passes.plugins import load_plugins

    plugins = load_plugins(PASSES)
    width = max(len(n) for n in [*PASSES, *(p.name for p in plugins)])
    for pass_name, cls in PASSES.items():
        marker = "*" if pass_name in DEFAULT_PASSES else " "
        click.echo(f"{marker} {pass_name:<{width}}  {cls.description()}")
    for plugin in plugins:
        if plugin.cls is not None:
            click.echo(f"  {plugin.name:<{width}}  {plugin.cls.description()} [plugin: {plugin.distribution}]")
        else:
            click.echo(f"  {plugin.name:<{width}}  not loaded ({plugin.distribution}): {plugin.error}")


@cli.command("backends")
def list_backends() -> None:
    """List the backends and whether each can build here (runtime, version, providers), else what is missing."""
    width = max(len(n) for n in BACKENDS)
    for backend_name, cls in BACKENDS.items():
        reason = cls.unavailable_reason()
        state = cls.runtime_description() if reason is None else f"unavailable: {reason}"
        click.echo(f"{backend_name:<{width}}  {state}")


def _shape_text(shape: tuple[Any, ...] | None) -> str:
    if shape is None:
        return "?"
    return "x".join("?" if d is None else str(d) for d in shape) or "scalar"


@cli.command()
@click.argument("model_path", metavar="MODEL", type=click.Path(dir_okay=True, path_type=Path))
@click.option("--input-shape", "--input-shapes", "input_shapes", multiple=True, metavar="[NAME:]DIMS",
              help="Count FLOPs at this concrete shape of a dynamic input, in any form optimize takes (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def inspect(model_path: Path, input_shapes: tuple[str, ...], as_json: bool) -> None:
    """Show MODEL's inputs, outputs, op histogram, FLOPs and parameters."""
    for text in input_shapes:
        parse_input_shapes(text)
    model = load_model(model_path)
    shapes = resolve_input_shapes(model, input_shapes)
    check_input_names(model, shapes)
    dynamic = dynamic_inputs_without_shape(model, shapes)
    infos = infer_tensor_info(model)
    stats = graph_stats(model, shapes)

    def describe(values: list[onnx.ValueInfoProto]) -> list[dict[str, Any]]:
        out = []
        for v in values:
            info = infos.get(v.name)
            out.append({
                "name": v.name,
                "type": onnx.helper.tensor_dtype_to_np_dtype(info.elem_type).name if info and info.elem_type else "?",
                "shape": list(info.shape) if info and info.shape is not None else None,
            })
        return out

    data: dict[str, Any] = {
        "path": str(model_path),
        "ir_version": model.ir_version,
        "opsets": {o.domain or "ai.onnx": o.version for o in model.opset_import},
        "producer": f"{model.producer_name} {model.producer_version}".strip(),
        "inputs": describe(graph_inputs(model)),
        "outputs": describe(list(model.graph.output)),
        **stats.to_dict(),
    }
    if dynamic:
        # FLOPs of nodes on dynamic dimensions cannot be counted; a partial sum would read as the whole.
        data["flops"] = None
        data["flops_unknown_for"] = dynamic
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    click.echo(f"{model_path}: IR {data['ir_version']}, opsets {data['opsets']}, producer '{data['producer']}'")
    for kind in ("inputs", "outputs"):
        click.echo(f"{kind}:")
        for v in data[kind]:
            shape = _shape_text(tuple(v["shape"]) if v["shape"] is not None else None)
            click.echo(f"  {v['name']}: {v['type']} {shape}")
    flops = (f"unknown: input {', '.join(repr(n) for n in dynamic)} has dynamic dimensions "
             "(give --input-shape to count them)") if dynamic else str(stats.flops.total)
    click.echo(f"nodes: {stats.nodes}   parameters: {stats.param_bytes} bytes   FLOPs: {flops}")
    if stats.flops.uncounted and not dynamic:
        click.echo(f"FLOPs not counted for: {', '.join(f'{op}×{n}' for op, n in stats.flops.uncounted.items())}")
    click.echo("ops:")
    for op, count in sorted(stats.op_histogram.items(), key=lambda kv: (-kv[1], kv[0])):
        op_flops = None if dynamic else stats.flops.by_op.get(op)
        click.echo(f"  {op:<24}{count:>6}" + (f"   {op_flops} FLOPs" if op_flops else ""))


cli.add_command(ablate)
cli.add_command(detect)
cli.add_command(evaluate)
cli.add_command(profile_ops)


def main() -> None:
    """Console-script entry point."""
    sys.exit(cli.main(prog_name="graphopt", standalone_mode=True))
