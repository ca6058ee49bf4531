"""The embedded stack and what runs on it: the emulator (moto's server, the resources, Lambda's trigger and
control plane, process isolation), the local model services, the demo, the fault run and the burst."""
