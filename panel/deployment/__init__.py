"""The deployment wing: everything that puts a certificate or a config somewhere. `dispatch` is
its one door (queue, run, record, notify); each kind of destination is a module of its own:
`nginx` (this server's nginx) and `install_targets` (files and a reload preset on this server)."""
