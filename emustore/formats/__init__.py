"""Archive formats, each read and written in one module: `docker_archive.py` (docker save/load) and
`oci.py` (OCI layouts and archives); `archive.py` holds what their writers share."""
