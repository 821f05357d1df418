"""Graph passes: the rewrite language, the passes written in it, the pass manager and the pipelines."""

from cnncompile.passes.manager import NumericCheck, PassRecord, PipelineRun, Step, float64_twin, run_pipeline
from cnncompile.passes.pipelines import CATALOG, PRESETS, Pipeline, load_pipeline, preset

__all__ = ["CATALOG", "PRESETS", "NumericCheck", "PassRecord", "Pipeline", "PipelineRun", "Step",
           "float64_twin", "load_pipeline", "preset", "run_pipeline"]
