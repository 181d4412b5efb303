"""The runtime side: CRI calls that carry out a plan (manager), sandbox and container config, security, resources and cgroups, volumes, hooks, logs, image GC."""
