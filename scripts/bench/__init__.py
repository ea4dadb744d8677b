"""`make bench`: emustore against the engines of today (dockerd 20.10 and 28, containerd 2.1) and the machine's floor."""
