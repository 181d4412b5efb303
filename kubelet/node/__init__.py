"""Node-level tooling: install, doctor, systemd notify, multi-node wiring, and the containerd harness (runtime/)."""
