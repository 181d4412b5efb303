"""Generated etcd v3 stubs (python -m kubelet.node.etcd.regen). Do not edit."""
