"""Latency profiler: where every millisecond of the top-down pipeline goes, per stage,
per batch size and per model, with the environment it was measured in.

Modules: stats (results and their JSON), timing (runs through TopDownPipeline's stage
hook), runners (what a runner reports), options (arguments, frames, boxes),
environment (host and GPU facts), report (the table), plot (matplotlib, the `plot`
extra). Stages and their meaning: README "profile".
"""

from edgepose.profile.environment import collect_environment, host_memory
from edgepose.profile.options import (DEFAULT_ITERS, DEFAULT_VIDEO_WARMUP, DEFAULT_WARMUP,
                                      SYNTHETIC_FRAME_SIZE, grid_boxes, parse_batch_sizes,
                                      parse_duration, read_frame_boxes, synthetic_frame)
from edgepose.profile.plot import plot_figure, plot_image, write_plot
from edgepose.profile.runners import (TENSORRT_PROFILER_NAMES, RunnerFacts, RunnerFactory,
                                      open_profiling_runner, runner_facts)
from edgepose.profile.stats import (LAYER_RUNS, REPORT_SCHEMA, STAGE_LABELS, STAGES,
                                    BatchProfile, Environment, LayerTime, MemoryStats,
                                    ModelProfile, ProfileReport, StageStats, VideoProfile,
                                    read_report_json, stage_stats, summarize_layers,
                                    write_report_json)
from edgepose.profile.timing import profile_model, profile_models, profile_video

__all__ = [
    "STAGES", "STAGE_LABELS", "REPORT_SCHEMA", "LAYER_RUNS", "TENSORRT_PROFILER_NAMES",
    "DEFAULT_WARMUP", "DEFAULT_ITERS", "DEFAULT_VIDEO_WARMUP", "SYNTHETIC_FRAME_SIZE",
    "StageStats", "stage_stats", "BatchProfile", "VideoProfile", "LayerTime", "MemoryStats",
    "ModelProfile", "Environment", "ProfileReport", "RunnerFacts", "RunnerFactory",
    "profile_model", "profile_video", "profile_models", "parse_duration", "parse_batch_sizes",
    "read_frame_boxes", "collect_environment", "host_memory", "plot_figure", "plot_image",
    "write_plot", "write_report_json", "read_report_json", "summarize_layers",
    "open_profiling_runner", "runner_facts", "synthetic_frame", "grid_boxes",
]
