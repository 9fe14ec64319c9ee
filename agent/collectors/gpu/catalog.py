"""Exported GPU metric families.

Field families come from the bundled fields.csv (its help text, kind and the known field's labels),
so every field a fields file can enable has a family here; a test keeps the two in step."""

from __future__ import annotations

from agent.collectors.gpu.fields import load_fields
from agent.collectors.gpu.sources import PREFIX
from agent.concepts.gpu import Exposition
from agent.metric_spec import MetricSpec

GPU_LABELS: tuple[str, ...] = ("host", "gpu", "uuid", "model", "pci_bus_id")

EXTRA_LABELS: dict[Exposition, tuple[str, ...]] = {
    "plain": (),
    "energy": (),
    "throttle": ("reason",),
    "violation": ("reason",),
    "xid": ("xid",),
    "process": ("pid", "process", "container"),
    "mig": ("gpu_instance", "compute_instance", "mig_uuid", "mig_profile"),
}

UP_METRIC = PREFIX + "up"


VIOLATION_HELP = ("Time the clocks were held back, by reason (NVML violation time since the driver loaded; "
                  "rate() gives the throttled share; app_clocks and base_clocks count every reason together).")


def _field_families() -> tuple[MetricSpec, ...]:
    families: dict[str, MetricSpec] = {}
    for spec in load_fields():  # the violation fields share one family, labelled by reason
        shared = spec.source.exposition == "violation"
        families.setdefault(spec.source.metric, MetricSpec(
            spec.source.metric, spec.source.kind, VIOLATION_HELP if shared else spec.help,
            GPU_LABELS + EXTRA_LABELS[spec.source.exposition]))
    return tuple(families.values())


GPU_METRICS: tuple[MetricSpec, ...] = (
    MetricSpec(UP_METRIC, "gauge", "1 if the GPU could be read on the last cycle.", GPU_LABELS),
    *_field_families(),
)
