"""nodelet: cni package - `nodelet-cni`, a CNI bridge plugin (bridge + veth + built-in host-local IPAM + nft ipMasq).

Public API for the daemon:
  config.render_conflist(...) / config.ensure_conflist(conf_dir, conflist)  the runtime's first config file
  install.ensure_plugin_installed(bin_dir, ...)                              the executable a runtime runs
  server.serve(socket_path)                                                  the fast path (host it in `nodelet run`)
The plugin itself: `python -m cni` / the `nodelet-cni` console script (dispatcher in __main__.py).
"""
