"""`make bench`: emustore pull vs docker pull vs the machine's floor, on deterministic images."""
