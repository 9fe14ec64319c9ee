"""GPU telemetry through NVML (no DCGM, no nvidia-smi, no root).

Public entry points (imported from their modules, so importing the catalog stays light):
- collector.build_gpu_collector(settings, host, driver=None) -> GpuCollector
- inventory.describe_gpus(driver) / inventory.render_gpus(console, inventory)  (`campwatch gpus`)
- nvml.NvmlDriver and agent.sim.gpu.SimulatedGpu, both implementing driver.GpuDriver
- fields.csv: what to collect, as data
"""
